"""Per-epoch checkpoints of a training stage, so an interrupted run resumes where it stopped."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import keras
import numpy as np

from audio_transfer.atomic_files import write_bytes, write_text
from audio_transfer.errors import ConfigError


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves a stage's whole training state at the end of every epoch, and restores it.

    Like Keras's ``BackupAndRestore``, and more, so that a resumed run ends exactly where an uninterrupted
    one does: the model's variables (random-generator states included), the optimizer's (moments and step
    count), early stopping's state (epochs waited, best value and epoch, the best weights) and the epochs'
    history. A finished stage records its kept weights and best epoch, so resuming skips it. Files are
    ``<directory>/<stage>.npz`` and ``<directory>/<stage>.json``, each replaced atomically (the JSON last:
    it says which epoch the arrays belong to).

    Args:
        directory: the checkpoint folder (created if needed).
        stage: the stage's name (``"head"``, ``"fine_tune"``).
        stopper: the stage's early stopping, whose state is saved with the model's, or ``None``.

    Example:
        >>> checkpoint = EpochCheckpoint(run / "checkpoint", stage="head", stopper=stopper)  # doctest: +SKIP
        >>> first_epoch = (checkpoint.restore(model) or {}).get("epochs_done", 0)  # doctest: +SKIP
        >>> model.fit(data, epochs=30, initial_epoch=first_epoch, callbacks=[stopper, checkpoint])
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        stage: str,
        stopper: ResumableEarlyStopping | None = None,
    ) -> None:
        super().__init__()
        self.directory = Path(directory)
        self.stage = stage
        self.stopper = stopper
        self.history: list[dict[str, Any]] = []

    @property
    def _arrays_path(self) -> Path:
        return self._paths(None)[0]

    @property
    def _state_path(self) -> Path:
        return self._paths(None)[1]

    def _paths(self, directory: str | os.PathLike | None) -> tuple[Path, Path]:
        """The stage's arrays and state files in ``directory`` (``None``: the checkpoint's own)."""
        folder = self.directory if directory is None else Path(directory)
        return folder / f"{self.stage}.npz", folder / f"{self.stage}.json"

    # -- saving -------------------------------------------------------------------------------------------
    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.history.append({"stage": self.stage, "epoch": epoch + 1, **_floats(logs)})
        self._save(epochs_done=epoch + 1, finished=None)

    def finish(self, best_epoch: int) -> None:
        """Record the stage as finished, with the weights it kept and the epoch they come from."""
        self._save(epochs_done=len(self.history), finished=best_epoch)

    def _save(self, *, epochs_done: int, finished: int | None) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        arrays = {f"model_{i}": np.asarray(v) for i, v in enumerate(self.model.variables)}
        optimizer = self.model.optimizer
        if optimizer is not None and optimizer.built:
            arrays.update({f"optimizer_{i}": np.asarray(v) for i, v in enumerate(optimizer.variables)})
        stopper_state = None
        if self.stopper is not None:
            stopper_state = self.stopper.state()
            for i, weight in enumerate(self.stopper.best_weights or ()):
                arrays[f"best_{i}"] = np.asarray(weight)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        write_bytes(self._arrays_path, buffer.getvalue())
        state = {
            "stage": self.stage,
            "epochs_done": epochs_done,
            "finished_best_epoch": finished,
            "history": self.history,
            "stopper": stopper_state,
        }
        write_text(self._state_path, json.dumps(state, indent=1))

    # -- restoring ----------------------------------------------------------------------------------------
    def saved(self, *, directory: str | os.PathLike | None = None) -> dict[str, Any] | None:
        """The stage's saved state (``epochs_done``, ``finished_best_epoch``, ``history``), if any, in
        ``directory`` (``None``: the checkpoint's own)."""
        state_path = self._paths(directory)[1]
        if not state_path.is_file():
            return None
        try:
            return json.loads(state_path.read_text())
        except (OSError, ValueError) as error:
            raise ConfigError(
                f"Cannot read the checkpoint {state_path} ({error}); train again without --resume."
            ) from error

    def restore(
        self, model: keras.Model, *, directory: str | os.PathLike | None = None
    ) -> dict[str, Any] | None:
        """Put ``model`` (compiled, as the stage built it) back in the state saved in ``directory``
        (``None``: the checkpoint's own; another for a worker resuming from the chief's checkpoints).

        Returns:
            the saved state (see :meth:`saved`): ``epochs_done``, the epoch to continue from
            (``initial_epoch`` of ``fit``), ``history``, the epochs already trained, and
            ``finished_best_epoch`` for a finished stage; ``None`` when nothing was saved.
        """
        state = self.saved(directory=directory)
        if state is None:
            return None
        arrays_path = self._paths(directory)[0]
        with np.load(arrays_path) as arrays:
            _assign(model.variables, arrays, "model", arrays_path)
            if any(name.startswith("optimizer_") for name in arrays.files):
                model.optimizer.build(model.trainable_variables)
                _assign(model.optimizer.variables, arrays, "optimizer", arrays_path)
            if self.stopper is not None and state["stopper"] is not None:
                best = sorted((name for name in arrays.files if name.startswith("best_")), key=_index)
                self.stopper.resume_from(state["stopper"], [arrays[name] for name in best] or None)
        self.history = list(state["history"])
        return state


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """Keras's ``EarlyStopping`` whose state (epochs waited, best value and epoch, best weights) can be
    saved and restored, so a resumed stage stops and restores where an uninterrupted one would."""

    _STATE = ("wait", "best", "best_epoch", "stopped_epoch")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._resumed: tuple[dict[str, Any], list[np.ndarray] | None] | None = None

    def state(self) -> dict[str, Any]:
        return {name: _plain(getattr(self, name)) for name in self._STATE}

    def resume_from(self, state: dict[str, Any], best_weights: list[np.ndarray] | None) -> None:
        """Take ``state`` and ``best_weights`` at the start of the next ``fit``."""
        self._resumed = (state, best_weights)

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)
        if self._resumed is not None:
            state, best_weights = self._resumed
            for name in self._STATE:
                setattr(self, name, state[name])
            self.best_weights = best_weights
            self._resumed = None


def _assign(variables, arrays, prefix: str, path: Path) -> None:
    names = sorted((name for name in arrays.files if name.startswith(f"{prefix}_")), key=_index)
    if len(names) != len(variables):
        raise ConfigError(
            f"The checkpoint {path} holds {len(names)} {prefix} variables where this model has "
            f"{len(variables)}: it was made by another model; train again without --resume."
        )
    for variable, name in zip(variables, names, strict=True):
        variable.assign(arrays[name])


def _index(name: str) -> int:
    return int(name.rsplit("_", 1)[1])


def _floats(logs: dict | None) -> dict[str, float]:
    return {key: float(value) for key, value in (logs or {}).items()}


def _plain(value: Any) -> Any:
    """Early stopping's state as JSON values (NumPy numbers become Python numbers)."""
    return value.item() if isinstance(value, (np.floating, np.integer)) else value
