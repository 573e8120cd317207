"""What :func:`~audio_transfer.synth.synthesize_keywords` wrote."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any


@dataclasses.dataclass(frozen=True)
class SynthReport:
    """The outcome of one :func:`~audio_transfer.synth.synthesize_keywords` run.

    Args:
        out_dir: the dataset folder (one sub-folder per word).
        counts: clips written per word, in the order the words were given.
        voices: the ``voice+variant`` names used, sorted; each is one speaker id in the file names.
        skipped: one line per clip not written (a word still longer than the clip at eSpeak's fastest rate).
        backend: the eSpeak NG backend that spoke (``"espeak-library"`` or ``"espeak-command"``).
        sample_rate: rate in Hz of the files.
        clip_seconds: length of every file in seconds.
        seed: the seed the run used.
        manifest: the JSON file beside the word folders that records every clip's parameters.
    """

    out_dir: Path
    counts: dict[str, int]
    voices: list[str]
    skipped: list[str]
    backend: str
    sample_rate: int
    clip_seconds: float
    seed: int
    manifest: Path

    @property
    def num_clips(self) -> int:
        """Clips written in all."""
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (paths as strings)."""
        data = dataclasses.asdict(self)
        data["out_dir"], data["manifest"] = str(self.out_dir), str(self.manifest)
        data["num_clips"] = self.num_clips
        return data

    def to_text(self) -> str:
        """A few lines for people."""
        lines = [
            f"Wrote {self.num_clips} clips ({self.clip_seconds:g} s, {self.sample_rate} Hz) "
            f"to {self.out_dir}",
            "  " + ", ".join(f"{word}: {count}" for word, count in self.counts.items()),
            f"  {len(self.voices)} voices ({self.backend}), seed {self.seed}; "
            f"parameters in {self.manifest.name}",
        ]
        if self.skipped:
            lines.append(
                f"  skipped {len(self.skipped)}: {self.skipped[0]}"
                + (", ..." if len(self.skipped) > 1 else "")
            )
        return "\n".join(lines)
