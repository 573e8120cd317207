"""CSV/TSV manifests of labelled clips: rows ``path,label[,speaker]``, written and read here.

Example::

    write_manifest("train.csv", [("clips/yes/a_nohash_0.wav", "yes", "a")])
    found = read_manifest("train.csv")
    found.examples[0].label  # "yes"
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable
from pathlib import Path

from audio_transfer.atomic_files import write_text
from audio_transfer.data.audio_example import NOISE_LABEL, AudioExample
from audio_transfer.data.discovered import Discovered
from audio_transfer.data.skipped_file import SkippedFile
from audio_transfer.data.speakers import parse_speaker
from audio_transfer.errors import DatasetError

MANIFEST_SUFFIXES: tuple[str, ...] = (".csv", ".tsv")
"""File name suffixes of manifests: comma-separated ``.csv`` and tab-separated ``.tsv``."""


def is_manifest(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a file with a manifest suffix (:data:`MANIFEST_SUFFIXES`)."""
    path = Path(path)
    return path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES


def write_manifest(path: str | os.PathLike, rows: Iterable[tuple[str | os.PathLike, str, str]]) -> Path:
    """Write a manifest with a ``path,label,speaker`` header, replacing ``path`` atomically.

    Clip paths are written absolute, so the manifest reads the same from any folder. A ``.tsv`` ``path``
    gets tab-separated columns, anything else commas.

    Args:
        path: the manifest file; its folder must exist.
        rows: ``(clip path, label, speaker)`` per clip; an empty speaker is allowed.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    text = io.StringIO()
    writer = csv.writer(text, delimiter=_delimiter(path), lineterminator="\n")
    writer.writerow(("path", "label", "speaker"))
    writer.writerows((str(Path(file).resolve()), label, speaker) for file, label, speaker in rows)
    return write_text(path, text.getvalue())


def read_manifest(path: str | os.PathLike, *, speaker_pattern: re.Pattern[str] | None = None) -> Discovered:
    """The examples a manifest lists; rows naming missing files are skipped and reported.

    Rows are ``path,label[,speaker]``; a header naming ``path`` and ``label`` may order the columns freely.
    Relative paths are relative to the manifest's folder. Rows labelled ``_background_noise_`` are the
    noise bank. Without a ``speaker`` cell the speaker comes from the file name (``speaker_pattern``).

    Raises:
        DatasetError: the manifest lists no files.
    """
    manifest = Path(path)
    delimiter = _delimiter(manifest)
    with open(manifest, newline="", encoding="utf-8-sig") as stream:
        rows = [
            (line, [cell.strip() for cell in row])
            for line, row in enumerate(csv.reader(stream, delimiter=delimiter), start=1)
            if any(cell.strip() for cell in row) and not row[0].lstrip().startswith("#")
        ]
    if rows and {"path", "label"} <= {cell.lower() for cell in rows[0][1]}:
        header = [cell.lower() for cell in rows.pop(0)[1]]
        columns = {name: header.index(name) for name in ("path", "label", "speaker") if name in header}
    else:
        columns = {"path": 0, "label": 1, "speaker": 2}
    if not rows:
        raise DatasetError(
            f"Manifest {os.fspath(manifest)!r} lists no files. Write one row per clip: path,label[,speaker]."
        )
    found = Discovered([], [], [])
    needed = max(columns["path"], columns["label"]) + 1
    for line, row in rows:
        where = f"{os.fspath(manifest)}:{line}"
        if len(row) < needed or not row[columns["path"]] or not row[columns["label"]]:
            found.skipped.append(SkippedFile(where, "expected columns path,label[,speaker] with both set"))
            continue
        listed = Path(row[columns["path"]])
        path = listed if listed.is_absolute() else manifest.parent / listed
        if not path.is_file():
            found.skipped.append(
                SkippedFile(os.fspath(path), f"listed on line {line} of {manifest.name} but no such file")
            )
            continue
        label = row[columns["label"]]
        if label == NOISE_LABEL:
            found.noise_files.append(path)
            continue
        relative_path = listed.as_posix()
        speaker_column = columns.get("speaker")
        speaker = row[speaker_column] if speaker_column is not None and speaker_column < len(row) else ""
        speaker = speaker or parse_speaker(relative_path, label=label, speaker_pattern=speaker_pattern)
        found.examples.append(AudioExample(path, label, speaker, relative_path))
    return found


def _delimiter(path: Path) -> str:
    return "\t" if path.suffix.lower() == ".tsv" else ","
