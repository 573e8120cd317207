"""One labelled clip of a dataset."""

from __future__ import annotations

import dataclasses
from pathlib import Path

# Speech Commands' reserved labels.
NOISE_LABEL = "_background_noise_"
SILENCE_LABEL = "_silence_"
UNKNOWN_LABEL = "_unknown_"


@dataclasses.dataclass(frozen=True)
class AudioExample:
    """A labelled audio clip: a file on disk, or an excerpt of one (a generated ``_silence_`` clip, a window
    of long negative audio).

    A generated example (``generated=True``) is an excerpt of a longer file (a background-noise file for
    ``_silence_``, a recording of everyday audio for a wake word's ``_unknown_`` windows): ``path`` is the
    file, ``offset_seconds`` where the excerpt starts and ``gain`` the factor its samples are scaled by.
    Its length is the ``clip_seconds`` of whoever decodes it; an offset too close to the end of
    the file is moved back so the excerpt fits. With no noise file at all, ``path`` is ``None`` and the clip
    is digital silence (zeros).

    Args:
        path: the audio file (a noise file for generated silence), or ``None`` for digital silence.
        label: class name.
        speaker: speaker id, or ``None`` when unknown.
        relative_path: stable id of the clip inside its dataset (the path relative to the dataset folder or
            manifest, with ``/`` separators; ``_silence_/<n>`` for generated silence). Splits hash it when
            the speaker is unknown.
        generated: the clip is an excerpt of ``path`` (or zeros), not the whole file.
        offset_seconds: where the excerpt starts in ``path`` (generated clips only).
        gain: factor the excerpt's samples are multiplied by (generated clips only).

    Example:
        >>> clip = "yes/0a7c2a8d_nohash_0.wav"
        >>> AudioExample(Path("speech_commands") / clip, "yes", "0a7c2a8d", clip).split_key
        '0a7c2a8d'
    """

    path: Path | None
    label: str
    speaker: str | None = None
    relative_path: str = ""
    generated: bool = False
    offset_seconds: float = 0.0
    gain: float = 1.0

    @property
    def split_key(self) -> str:
        """What splits hash: the speaker id when known (so a speaker stays in one split), else the clip id."""
        return self.speaker or self.relative_path or str(self.path)
