"""Reading and writing audio files.

soundfile (libsndfile) reads WAV, FLAC, OGG (Vorbis/Opus), MP3 and AIFF with 8/16/24/32-bit integer or float
samples. Files libsndfile does not recognise go to audioread (which librosa uses too) when one of its backends
can decode them (ffmpeg, GStreamer, Core Audio, or the standard library for plain WAV/AIFF). Resampling uses
soxr's high-quality mode, as ``librosa.resample(res_type="soxr_hq")`` does.

Every failure is an :class:`~audio_transfer.errors.AudioDecodeError` that names the file and the reason:
missing, empty, not audio, corrupt or truncated stream, NaN/Inf samples, or an invalid ``sample_rate``.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf

from audio_transfer.atomic_files import atomic_write
from audio_transfer.audio.audio_info import AudioInfo
from audio_transfer.audio.resample import resample
from audio_transfer.checks import is_number, is_positive_int
from audio_transfer.errors import AudioDecodeError, ConfigError, InputShapeError

logger = logging.getLogger(__name__)

# File extensions dataset discovery treats as audio.
AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff")

# libsndfile's code for "Format not recognised": the only open failure worth a second decoder.
_SF_ERR_UNRECOGNISED_FORMAT = 1
# libsndfile logs "data : <declared> (should be <present>)" when a WAV's data chunk runs past the end of the
# file; it then silently returns only the samples present.
_WAV_DATA_SHORTFALL = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
# Streaming writers that cannot seek back leave the data size at 0 or 0xFFFFFFFF: not a truncation.
_WAV_UNKNOWN_SIZES = (0, 0xFFFFFFFF, 0x7FFFFFFF)
_PCM_SCALE_DIVISOR = 2.0**15  # audioread delivers 16-bit PCM
# save_audio takes (channels, samples); more channels than this means a transposed (samples, channels) array.
_MAX_CHANNELS = 64


def load_audio(
    path: str | os.PathLike,
    *,
    sample_rate: int | None = 16000,
    mono: bool = True,
    offset_seconds: float = 0.0,
    duration_seconds: float | None = None,
) -> np.ndarray:
    """Decode an audio file to float32 samples in [-1, 1], resampled and mixed down as asked.

    The whole stream is decoded and checked: a truncated or corrupt file raises instead of returning the
    samples before the damage. With ``offset_seconds`` or ``duration_seconds`` (as ``librosa.load``'s
    ``offset`` and ``duration``), only that excerpt is read: libsndfile seeks to it, so a window of an
    hour-long recording costs the window, not the hour (formats only audioread decodes are decoded whole,
    then cut).

    Args:
        path: the audio file.
        sample_rate: rate in Hz of the result (resampled with soxr HQ when the file differs), or ``None`` to
            keep the file's own rate (see :func:`audio_info`).
        mono: average the channels into one.
        offset_seconds: where to start reading, in seconds from the start of the file (>= 0).
        duration_seconds: how many seconds to read from there (> 0); ``None`` reads to the end. An excerpt
            running past the end of the file is shorter.

    Returns:
        float32 array ``(samples,)`` when ``mono``, else ``(channels, samples)`` (2-D even for a mono file).
        Float files with samples beyond ±1 are clipped to [-1, 1], with a warning.

    Raises:
        AudioDecodeError: the file is missing, empty, not audio, corrupt or truncated, holds NaN/Inf
            samples, or ``sample_rate`` is not a positive integer.

    Example:
        >>> waveform = load_audio("speech.flac", sample_rate=16000)  # doctest: +SKIP
        >>> waveform.shape, waveform.dtype  # doctest: +SKIP
        ((16000,), dtype('float32'))
    """
    _check_sample_rate(path, sample_rate)
    if not (is_number(offset_seconds) and offset_seconds >= 0):
        raise ConfigError(f"offset_seconds must be a number >= 0, received {offset_seconds!r}.")
    if duration_seconds is not None and not (is_number(duration_seconds) and duration_seconds > 0):
        raise ConfigError(f"duration_seconds must be a number > 0 or None, received {duration_seconds!r}.")
    samples, info = _decode(Path(path), offset_seconds=offset_seconds, duration_seconds=duration_seconds)
    waveform = samples.T  # (channels, samples)
    if mono:
        waveform = waveform.mean(axis=0)
    if sample_rate is not None and sample_rate != info.sample_rate:
        waveform = resample(waveform, orig_sample_rate=info.sample_rate, target_sample_rate=sample_rate)
    # Resampling can overshoot ±1 by a hair on full-scale input; keep the promised range.
    return np.ascontiguousarray(np.clip(waveform, -1.0, 1.0), dtype=np.float32)


def verify_audio(path: str | os.PathLike) -> AudioInfo:
    """Decode a whole file at its own rate to prove it is readable, and describe it.

    Slower than :func:`audio_info` (which reads only the header) but it catches what a header hides: a
    FLAC stream that loses sync half-way, a WAV cut short, NaN samples.

    Raises:
        AudioDecodeError: as :func:`load_audio`.
    """
    return _decode(Path(path))[1]


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Describe an audio file from its header, without decoding the samples.

    Raises:
        AudioDecodeError: the file is missing, empty or not audio. A stream corrupt after its header is not
            detected here: use :func:`verify_audio` or :func:`load_audio` for that.
    """
    path = _existing_file(Path(path))
    try:
        info = sf.info(os.fspath(path))
    except sf.LibsndfileError as error:
        if error.code != _SF_ERR_UNRECOGNISED_FORMAT:
            raise _decode_error(path, error) from None
        # Formats libsndfile does not know are rare enough to decode whole to learn their length.
        return _decode_with_audioread(path, soundfile_error=error)[1]
    return _make_info(path, info.samplerate, info.channels, info.frames, info.format, info.subtype)


def save_audio(
    path: str | os.PathLike, waveform: np.ndarray, *, sample_rate: int, subtype: str | None = None
) -> Path:
    """Write a waveform to a file whose extension picks the format (``.wav``, ``.flac``, ``.ogg``, ...).

    The file is written beside ``path`` and renamed onto it, so readers never see a partial file.

    Args:
        path: destination; missing parent folders are created.
        waveform: float array ``(samples,)`` or ``(channels, samples)`` in [-1, 1] (integer formats clip
            values beyond).
        sample_rate: rate in Hz.
        subtype: libsndfile sample encoding (``"PCM_16"``, ``"PCM_24"``, ``"FLOAT"``, ...); ``None`` takes the
            format's default (16-bit PCM for WAV and FLAC, Vorbis for OGG).

    Returns:
        the path written.

    Raises:
        ConfigError: bad ``sample_rate``, unknown extension or subtype, NaN/Inf samples, unwritable path.
        InputShapeError: ``waveform`` is not ``(samples,)`` or ``(channels, samples)``.

    Example:
        >>> save_audio("tone.flac", np.zeros(16000, np.float32), sample_rate=16000)  # doctest: +SKIP
    """
    path = Path(path)
    if not is_positive_int(sample_rate):
        raise ConfigError(
            f"Cannot write {os.fspath(path)!r}: sample_rate must be a positive integer number of Hz, "
            f"received {sample_rate!r}."
        )
    waveform = np.asarray(waveform)
    too_many_channels = waveform.ndim == 2 and waveform.shape[0] > _MAX_CHANNELS
    if waveform.ndim not in (1, 2) or waveform.shape[-1] == 0 or too_many_channels:
        raise InputShapeError(
            f"Cannot write {os.fspath(path)!r}: expected a waveform of shape (samples,) or (channels, "
            f"samples) with at most {_MAX_CHANNELS} channels and at least one sample, received shape "
            f"{waveform.shape}. Transpose a (samples, channels) array first."
        )
    if not np.isfinite(waveform).all():
        raise ConfigError(f"Cannot write {os.fspath(path)!r}: the waveform holds NaN or Inf samples.")
    format_ = path.suffix.lstrip(".").upper()
    format_ = {"OGA": "OGG", "AIF": "AIFF"}.get(format_, format_)
    if format_ not in sf.available_formats():
        raise ConfigError(
            f"Cannot write {os.fspath(path)!r}: unknown audio extension {path.suffix!r}. Use one of .wav, "
            ".flac, .ogg, .mp3, .aiff."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        atomic_write(
            path, lambda file: sf.write(file, waveform.T, sample_rate, subtype=subtype, format=format_)
        )
    except (sf.LibsndfileError, ValueError, TypeError, OSError) as error:
        raise ConfigError(f"Cannot write {os.fspath(path)!r} (subtype={subtype!r}): {error}") from None
    return path


# -- internals ------------------------------------------------------------------------------------------


def _check_sample_rate(path: str | os.PathLike, sample_rate: int | None) -> None:
    if sample_rate is not None and not is_positive_int(sample_rate):
        raise AudioDecodeError(
            f"Cannot load {os.fspath(path)!r} at sample_rate={sample_rate!r}: sample_rate must be a positive "
            "integer number of Hz (for example 16000), or None to keep the file's own rate."
        )


def _existing_file(path: Path) -> Path:
    if not path.exists():
        raise AudioDecodeError(f"Cannot read {os.fspath(path)!r}: no such file. Check the path.")
    if path.is_dir():
        raise AudioDecodeError(f"Cannot read {os.fspath(path)!r}: it is a folder, not an audio file.")
    if path.stat().st_size == 0:
        raise AudioDecodeError(f"Cannot read {os.fspath(path)!r}: the file is empty (0 bytes).")
    return path


def _libsndfile_reason(error: Exception) -> str:
    """libsndfile's own words, without its "Error : " prefix and final full stop."""
    reason = getattr(error, "error_string", None) or str(error)
    return reason.removeprefix("Error : ").rstrip(".")


def _decode_error(path: Path, error: Exception) -> AudioDecodeError:
    """An AudioDecodeError for a stream libsndfile opened but could not read (or rejected as malformed)."""
    return AudioDecodeError(
        f"Cannot decode {os.fspath(path)!r}: the audio stream is corrupt or truncated (libsndfile: "
        f"{_libsndfile_reason(error)}). Re-export or re-download the file, or remove it from the dataset."
    )


def _make_info(
    path: Path, sample_rate: int, channels: int, num_samples: int, format_: str, subtype: str | None
) -> AudioInfo:
    return AudioInfo(
        path=os.fspath(path),
        sample_rate=int(sample_rate),
        channels=int(channels),
        num_samples=int(num_samples),
        duration_seconds=num_samples / sample_rate,
        format=format_,
        subtype=subtype,
    )


def _sound_file_info(path: Path, sound_file: sf.SoundFile) -> AudioInfo:
    """The info of an open ``sound_file``; ``AudioDecodeError`` when it holds no samples."""
    info = _make_info(
        path,
        sound_file.samplerate,
        sound_file.channels,
        sound_file.frames,
        sound_file.format,
        sound_file.subtype,
    )
    if info.num_samples == 0:
        raise AudioDecodeError(
            f"Cannot read {os.fspath(path)!r}: the {info.format} file holds no audio (0 samples)."
        )
    return info


def _decode(
    path: Path, *, offset_seconds: float = 0.0, duration_seconds: float | None = None
) -> tuple[np.ndarray, AudioInfo]:
    """Samples ``(frames, channels)`` float32 at the file's rate (the excerpt from ``offset_seconds`` for
    ``duration_seconds`` when given), and the file's info; checked throughout."""
    path = _existing_file(path)
    excerpt = offset_seconds > 0 or duration_seconds is not None
    try:
        sound_file = sf.SoundFile(os.fspath(path))
    except sf.LibsndfileError as error:
        if error.code != _SF_ERR_UNRECOGNISED_FORMAT:
            raise _decode_error(path, error) from None
        samples, info = _decode_with_audioread(path, soundfile_error=error)
        start, stop = _excerpt_frames(info, offset_seconds, duration_seconds)
        samples = samples[start:stop]
    else:
        with sound_file:
            info = _sound_file_info(path, sound_file)
            start, stop = _excerpt_frames(info, offset_seconds, duration_seconds)
            try:
                if start:
                    sound_file.seek(start)
                samples = sound_file.read(stop - start, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as error:
                raise _decode_error(path, error) from None
            log = sound_file.extra_info
        if excerpt:
            if len(samples) < stop - start:
                raise AudioDecodeError(
                    f"Cannot decode {os.fspath(path)!r}: the stream ended after {start + len(samples)} of "
                    f"{info.num_samples} samples (corrupt or truncated). Re-export or re-download it."
                )
        else:
            _check_complete(path, info, len(samples), log)
    _check_finite(path, samples, info.sample_rate, offset=start)
    _warn_beyond_full_scale(path, samples, info)
    return samples, info


def _excerpt_frames(
    info: AudioInfo, offset_seconds: float, duration_seconds: float | None
) -> tuple[int, int]:
    """``(start, stop)`` frames of an excerpt, within the file."""
    start = min(round(offset_seconds * info.sample_rate), info.num_samples)
    if duration_seconds is None:
        return start, info.num_samples
    return start, min(start + round(duration_seconds * info.sample_rate), info.num_samples)


def _warn_beyond_full_scale(path: Path, samples: np.ndarray, info: AudioInfo) -> bool:
    """Warn when a float file's ``samples`` go beyond [-1, 1] (they get clipped); whether they do."""
    if info.subtype in ("FLOAT", "DOUBLE", None) and len(samples) and np.abs(samples).max() > 1.0:
        logger.warning(
            "%s has samples up to %.2f, beyond [-1, 1]; clipping them.", path, float(np.abs(samples).max())
        )
        return True
    return False


def _check_complete(path: Path, info: AudioInfo, samples_read: int, log: str) -> None:
    """Raise when fewer samples came out than the header promised (a file cut short)."""
    shortfall = _WAV_DATA_SHORTFALL.search(log) if info.format in ("WAV", "WAVEX", "RF64", "W64") else None
    if shortfall is not None:
        declared, present = (int(group) for group in shortfall.groups())
        if declared not in _WAV_UNKNOWN_SIZES and present < declared:
            raise AudioDecodeError(
                f"Cannot decode {os.fspath(path)!r}: the file is truncated: its header declares {declared} "
                f"bytes of audio but only {present} are present. Re-export or re-download it, or remove it "
                "from the dataset."
            )
    if samples_read < info.num_samples:
        raise AudioDecodeError(
            f"Cannot decode {os.fspath(path)!r}: the stream ended after {samples_read} of "
            f"{info.num_samples} samples (corrupt or truncated). Re-export or re-download it."
        )


def _check_finite(path: Path, samples: np.ndarray, sample_rate: int, *, offset: int = 0) -> None:
    """Raise when ``samples`` ``(frames, channels)``, from frame ``offset`` of the file, hold NaN/Inf."""
    finite = np.isfinite(samples).all(axis=1)
    if not finite.all():
        first = offset + int(np.argmin(finite))
        raise AudioDecodeError(
            f"Cannot use {os.fspath(path)!r}: it holds {int((~finite).sum())} NaN/Inf samples (first at "
            f"sample {first}, {first / sample_rate:.3f} s). Fix or re-export the file."
        )


def _decode_with_audioread(path: Path, *, soundfile_error: Exception) -> tuple[np.ndarray, AudioInfo]:
    """Decode with audioread, the fallback librosa uses for formats libsndfile does not know."""
    not_audio = AudioDecodeError(
        f"Cannot read {os.fspath(path)!r}: not a recognised audio file (libsndfile: "
        f"{_libsndfile_reason(soundfile_error)}; no audioread backend could decode it "
        "either). Supported without extra software: WAV, FLAC, OGG Vorbis/Opus, MP3, AIFF; install ffmpeg "
        "for others."
    )
    try:
        import audioread
    except ImportError:
        raise not_audio from None
    try:
        with warnings.catch_warnings():
            # audioread's standard-library backend imports aifc/audioop/sunau, deprecated since Python 3.11.
            warnings.simplefilter("ignore", DeprecationWarning)
            with audioread.audio_open(os.fspath(path)) as decoder:
                sample_rate, channels = decoder.samplerate, decoder.channels
                buffers = [np.frombuffer(buffer, "<i2") for buffer in decoder]
    except (audioread.DecodeError, OSError, EOFError, ValueError):
        raise not_audio from None
    if not is_positive_int(sample_rate) or not is_positive_int(channels):
        raise not_audio
    interleaved = np.concatenate(buffers) if buffers else np.zeros(0, "<i2")
    samples = (interleaved.astype(np.float32) / _PCM_SCALE_DIVISOR).reshape(-1, channels)
    if len(samples) == 0:
        raise AudioDecodeError(f"Cannot read {os.fspath(path)!r}: the file holds no audio (0 samples).")
    format_ = path.suffix.lstrip(".").upper() or "UNKNOWN"
    return samples, _make_info(path, sample_rate, channels, len(samples), format_, None)
