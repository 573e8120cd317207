"""What discovering a dataset found: labelled examples, the noise bank and the files left out."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from audio_transfer.data.audio_example import AudioExample
from audio_transfer.data.skipped_file import SkippedFile


@dataclasses.dataclass
class Discovered:
    """Examples labelled as found on disk (a folder tree or a manifest), the noise bank and the files left
    out."""

    examples: list[AudioExample]
    noise_files: list[Path]
    skipped: list[SkippedFile]
