"""How a keyword spotter turns stream posteriors into detections, saved beside the model as streaming.json."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

from audio_transfer.atomic_files import write_json
from audio_transfer.checks import is_number
from audio_transfer.errors import ConfigError

# Written by `audio-transfer evaluate-stream` into the run folder; read by `detect` and copied by `export`.
STREAMING_FILE = "streaming.json"


@dataclasses.dataclass(frozen=True)
class DetectionSettings:
    """Threshold, smoothing and refractory period of streaming detection.

    Args:
        threshold: smoothed keyword probability that fires a detection, in (0, 1].
        smoothing_seconds: span of the trailing moving average over window positions (0 for none).
        refractory_seconds: time after a detection during which nothing fires; ``None`` for the length of
            the window the model hears (the clip with its context), about as long as one word keeps the
            scores up.
        target_fa_per_hour: the false-accept budget the threshold was chosen for, when it was measured.
        measured: what ``evaluate-stream`` measured at ``threshold`` (``false_reject_rate``,
            ``false_accepts_per_hour``, ``stride_seconds``, data used), for the record.

    Example:
        >>> settings = DetectionSettings(threshold=0.8)
        >>> settings.write(run_dir / STREAMING_FILE)  # doctest: +SKIP
        >>> DetectionSettings.read(run_dir / STREAMING_FILE).threshold  # doctest: +SKIP
        0.8
    """

    threshold: float = 0.5
    smoothing_seconds: float = 0.24
    refractory_seconds: float | None = None
    target_fa_per_hour: float | None = None
    measured: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (is_number(self.threshold) and 0.0 < self.threshold <= 1.0):
            raise ConfigError(f"threshold must be in (0, 1], received {self.threshold!r}.")
        for name in ("smoothing_seconds", "refractory_seconds"):
            value = getattr(self, name)
            if value is None and name == "refractory_seconds":
                continue
            if not (is_number(value) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be a non-negative number of seconds, received {value!r}.")

    def replace(self, **changes: Any) -> DetectionSettings:
        """A copy with the fields given (``None`` values are ignored, so CLI flags can pass through)."""
        return dataclasses.replace(
            self, **{key: value for key, value in changes.items() if value is not None}
        )

    def smoothing_windows(self, *, stride_seconds: float) -> int:
        """Window positions ``stride_seconds`` apart that the smoothing averages (at least 1)."""
        return max(1, round(self.smoothing_seconds / stride_seconds))

    def refractory_seconds_for(self, *, window_seconds: float) -> float:
        """The refractory period, or ``window_seconds`` (the window the model hears) when it is unset."""
        return window_seconds if self.refractory_seconds is None else self.refractory_seconds

    def refractory_windows(self, *, stride_seconds: float, window_seconds: float) -> int:
        """Window positions ``stride_seconds`` apart that a detection blocks, itself included (at least 1);
        an unset refractory period lasts ``window_seconds``."""
        seconds = self.refractory_seconds_for(window_seconds=window_seconds)
        return max(1, math.ceil(seconds / stride_seconds - 1e-9))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def write(self, path: str | os.PathLike) -> Path:
        """Write the settings as JSON (atomically)."""
        return write_json(path, self.to_dict())

    @classmethod
    def read(cls, path: str | os.PathLike) -> DetectionSettings:
        """Read settings written by :meth:`write`; ConfigError naming the file when it is not such a file."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
            known = {field.name for field in dataclasses.fields(cls)}
            return cls(**{key: value for key, value in data.items() if key in known})
        except (OSError, ValueError, TypeError, AttributeError) as error:
            raise ConfigError(
                f"Cannot read the detection settings {path}: {error}. Delete it or rerun "
                "`audio-transfer evaluate-stream` to write it again."
            ) from error

    @classmethod
    def for_model(cls, model_dir: str | os.PathLike) -> DetectionSettings:
        """The settings saved in ``model_dir`` (``streaming.json``), or the defaults when there are none."""
        path = Path(model_dir) / STREAMING_FILE
        return cls.read(path) if path.is_file() else cls()
