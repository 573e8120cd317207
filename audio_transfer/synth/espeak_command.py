"""The ``espeak-ng`` program, one process per utterance."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import soundfile as sf

from audio_transfer.errors import DependencyError
from audio_transfer.synth.espeak_library import INSTALL_HINT
from audio_transfer.synth.speech_synthesizer import SpeechSynthesizer

# eSpeak NG's own pitch range: the command line has no option for it, SSML's <prosody range> sets it.
_DEFAULT_PITCH_RANGE = 50
_TIMEOUT_SECONDS = 60
_OTHER_LANGUAGES = re.compile(r"(\s*\([^()]*\))+\s*$")


class EspeakCommand(SpeechSynthesizer):
    """eSpeak NG through its command-line program (``espeak-ng --stdout``), a new process per utterance.

    A fresh process starts from a clean state, so the same arguments always give the same samples. A pitch
    range other than 50 is passed as SSML (``<prosody range="...">``, the program has no option for it),
    which shifts eSpeak's clause timing slightly.

    Args:
        executable: the program; ``None`` looks ``espeak-ng`` up on ``PATH``.
        data_path: an ``espeak-ng-data`` folder to use instead of the program's own.

    Raises:
        DependencyError: the program is not found or does not run.

    Example:
        >>> engine = EspeakCommand()  # doctest: +SKIP
        >>> engine.synthesize("seven", voice="en-gb-x-rp+f2").dtype  # doctest: +SKIP
        dtype('int16')
    """

    name = "espeak-command"

    def __init__(
        self, executable: str | os.PathLike | None = None, *, data_path: str | os.PathLike | None = None
    ):
        found = shutil.which(os.fspath(executable or "espeak-ng"))
        if found is None:
            raise DependencyError(
                f"The program {os.fspath(executable or 'espeak-ng')!r} is not found. {INSTALL_HINT}"
            )
        self.executable = Path(found)
        # espeak-ng's --path names the folder that holds espeak-ng-data.
        self._path_option = [f"--path={os.fspath(Path(data_path).parent)}"] if data_path is not None else []
        super().__init__(
            sample_rate=sf.info(io.BytesIO(self._run(["-z", "--stdout", "-v", "en", "a"]))).samplerate,
            voice_files=self._voice_files("--voices"),
            variant_files=self._voice_files("--voices=variant"),
        )

    def render(self, text: str, *, voice: str, rate_wpm: int, pitch: int, pitch_range: int) -> np.ndarray:
        arguments = ["-v", voice, "-s", str(rate_wpm), "-p", str(pitch)]
        if pitch_range == _DEFAULT_PITCH_RANGE:
            arguments.append(text)
        else:
            arguments += ["-m", f'<prosody range="{pitch_range}">{escape(text)}</prosody>']
        # -z: no final sentence pause (the library speaks without espeakENDPAUSE too); -b 1: UTF-8 text.
        wav = self._run(["-b", "1", "-z", "--stdout", *arguments])
        # --stdout cannot seek back to write the data size; libsndfile reads such a stream to its end.
        samples, _ = sf.read(io.BytesIO(wav), dtype="int16")
        return samples

    def render_phonemes(self, texts: list[str], *, voice: str) -> list[str]:
        # -q: no sound; -x: phoneme mnemonics on stdout, one line per clause; --sep: between phonemes.
        return [
            " ".join(self._run(["-b", "1", "-q", "-x", "--sep=_", "-v", voice, text]).decode("utf-8").split())
            for text in texts
        ]

    def _run(self, arguments: list[str]) -> bytes:
        command = [os.fspath(self.executable), *self._path_option, *arguments]
        try:
            completed = subprocess.run(command, capture_output=True, check=True, timeout=_TIMEOUT_SECONDS)
        except (OSError, subprocess.SubprocessError) as error:
            stderr = (getattr(error, "stderr", None) or b"").decode("utf-8", "replace").strip()
            raise DependencyError(f"{' '.join(command)!r} failed: {error} {stderr}. {INSTALL_HINT}") from None
        return completed.stdout

    def _voice_files(self, option: str) -> list[str]:
        """The File column of ``espeak-ng --voices[=...]``: ``gmw/en-US``, ``!v/m3``, ``!v/Mr serious``."""
        lines = self._run([option]).decode("utf-8", "replace").splitlines()[1:]  # after the header
        # Columns: priority, language, age/gender, name (spaces as underscores), file (may hold spaces),
        # then "(language priority)" pairs.
        return [
            _OTHER_LANGUAGES.sub("", fields[4]).strip()
            for fields in (line.split(None, 4) for line in lines)
            if len(fields) == 5
        ]
