"""Find labelled audio files in folder-per-class trees (manifests: :mod:`audio_transfer.data.manifest`).
Nothing is decoded here."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from audio_transfer.audio import AUDIO_EXTENSIONS
from audio_transfer.data.audio_example import NOISE_LABEL, AudioExample
from audio_transfer.data.discovered import Discovered
from audio_transfer.data.manifest import is_manifest, read_manifest
from audio_transfer.data.skipped_file import SkippedFile
from audio_transfer.data.speakers import parse_speaker
from audio_transfer.errors import DatasetError

logger = logging.getLogger(__name__)


def discover(source: Path, speaker_pattern: re.Pattern[str] | None) -> Discovered:
    """Examples of a folder-per-class tree or of a manifest, by what ``source`` is."""
    if source.is_dir():
        return _discover_folder(source, speaker_pattern)
    if is_manifest(source):
        return read_manifest(source, speaker_pattern=speaker_pattern)
    if not source.exists():
        raise DatasetError(f"Dataset {os.fspath(source)!r} does not exist. Check the path.")
    raise DatasetError(
        f"Dataset {os.fspath(source)!r} is neither a folder nor a .csv/.tsv manifest. Pass a folder with one "
        "sub-folder of audio files per class, or a manifest with columns path,label[,speaker]."
    )


def _is_audio_name(name: str) -> bool:
    return name.lower().endswith(AUDIO_EXTENSIONS)


def find_audio_files(folder: str | os.PathLike) -> tuple[list[Path], list[SkippedFile]]:
    """Audio files anywhere below ``folder``, following symbolic links (once each), sorted, and the links
    that lead nowhere (dangling or looping), as skipped files. Hidden files and folders are left out.

    Example:
        >>> files, broken = find_audio_files("recordings")  # doctest: +SKIP
    """
    files, broken = [], []
    visited = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in visited:  # a link back up the tree
            dirnames[:] = []
            continue
        visited.add(real)
        dirnames[:] = sorted(name for name in dirnames if not name.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or not _is_audio_name(name):
                continue
            path = Path(dirpath, name)
            if path.is_file():
                files.append(path)
            else:
                broken.append(SkippedFile(os.fspath(path), "broken symbolic link: its target does not exist"))
    return files, broken


def _discover_folder(root: Path, speaker_pattern: re.Pattern[str] | None) -> Discovered:
    found = Discovered([], [], [])
    loose = []
    for child in sorted(root.iterdir()):
        if child.name.startswith("."):
            continue
        if not child.is_dir():
            if _is_audio_name(child.name):
                loose.append(child.name)
            continue
        files, broken = find_audio_files(child)
        found.skipped.extend(broken)
        if child.name == NOISE_LABEL:
            found.noise_files.extend(files)
            continue
        if not files:
            logger.info("%s holds no audio files; it is not a class.", child)
        for path in files:
            relative_path = path.relative_to(root).as_posix()
            speaker = parse_speaker(relative_path, label=child.name, speaker_pattern=speaker_pattern)
            found.examples.append(AudioExample(path, child.name, speaker, relative_path))
    if loose:
        logger.warning(
            "%d audio files lie directly in %s and are ignored (e.g. %s): put each class's files in a "
            "sub-folder named after the class.",
            len(loose),
            root,
            loose[0],
        )
    return found
