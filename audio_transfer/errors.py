"""Typed exceptions of audio_transfer. Every message names the file or argument and says what to do."""


class AudioTransferError(Exception):
    """Base class of every error audio_transfer raises on purpose."""


class BackendError(AudioTransferError, ImportError):
    """Keras runs on a backend other than TensorFlow."""


class AudioDecodeError(AudioTransferError, ValueError):
    """An audio file cannot be read: missing, empty, not audio, corrupt, or holding NaN/Inf samples."""


class DatasetError(AudioTransferError, ValueError):
    """A dataset folder or manifest cannot be used as given (no classes, bad columns, too many bad files)."""


class ConfigError(AudioTransferError, ValueError):
    """An argument or configuration value is out of range or inconsistent."""


class BaseNotFoundError(AudioTransferError, LookupError):
    """A base name, hub handle or path does not resolve to a model."""


class ExportError(AudioTransferError, RuntimeError):
    """A model cannot be exported as asked (unsupported ops, missing calibration data, unwritable path)."""


class InputShapeError(AudioTransferError, ValueError):
    """A tensor or array has the wrong rank or size for the layer or model it is given to."""


class DependencyError(AudioTransferError, ImportError):
    """A package, shared library or program that a feature needs is missing or cannot be loaded."""


class OutputError(AudioTransferError, OSError):
    """A file or folder cannot be written: its folder is missing or read-only, the disk is full, or a file
    stands where a folder should (or the other way round)."""


class ExportOutputError(ExportError, OutputError):
    """An export's output path cannot be written; an ``ExportError`` and an ``OutputError``."""


class StoreError(DatasetError):
    """A feature store cannot be used as given: incomplete (no manifest), empty, of another layout version,
    made with another base or settings than expected, or with a shard missing or damaged."""
