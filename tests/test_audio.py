"""audio_transfer.audio: decoding many encodings, resampling, mixdown, writing, and every decode error."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import soundfile as sf
from audio_files import (
    write_corrupt_flac,
    write_float_wav_with,
    write_tone,
    write_truncated_wav,
)
from conftest import make_tone

from audio_transfer import audio as audio_module
from audio_transfer.audio import (
    AudioDecodeError,
    audio_info,
    crop_or_pad,
    load_audio,
    resample,
    save_audio,
    trim_silence,
    verify_audio,
)
from audio_transfer.errors import ConfigError, InputShapeError

# (extension, subtype, largest error expected of a round trip through the encoding)
ENCODINGS = [
    ("wav", "PCM_U8", 1 / 64),
    ("wav", "PCM_16", 1e-4),
    ("wav", "PCM_24", 1e-6),
    ("wav", "PCM_32", 1e-6),
    ("wav", "FLOAT", 1e-7),
    ("flac", "PCM_16", 1e-4),
    ("flac", "PCM_24", 1e-6),
    ("aiff", "PCM_16", 1e-4),
]


@pytest.mark.parametrize(("extension", "subtype", "tolerance"), ENCODINGS)
@pytest.mark.parametrize(("sample_rate", "channels"), [(8000, 1), (22050, 2), (48000, 1)])
def test_lossless_round_trip_at_native_rate(tmp_path, extension, subtype, tolerance, sample_rate, channels):
    path = write_tone(
        tmp_path / f"tone.{extension}",
        sample_rate=sample_rate,
        channels=channels,
        subtype=subtype,
        duration_seconds=0.25,
    )
    expected = sf.read(path, dtype="float64", always_2d=True)[0].T

    waveform = load_audio(path, sample_rate=None, mono=False)

    assert waveform.dtype == np.float32
    assert waveform.shape == (channels, round(0.25 * sample_rate))
    assert np.abs(waveform - expected).max() <= tolerance
    first_channel = make_tone(sample_rate=sample_rate, duration_seconds=0.25)
    assert np.abs(waveform[0] - first_channel).max() < 1 / 64 + 1e-6


@pytest.mark.parametrize("extension", ["ogg", "mp3"])
def test_lossy_formats_decode_close_to_the_tone(tmp_path, extension):
    path = write_tone(tmp_path / f"tone.{extension}", sample_rate=16000, duration_seconds=1.0)

    waveform = load_audio(path, sample_rate=16000)

    assert waveform.ndim == 1 and abs(len(waveform) - 16000) < 2000  # codecs may add priming samples
    spectrum = np.abs(np.fft.rfft(waveform))
    assert np.argmax(spectrum) * 16000 / len(waveform) == pytest.approx(440, abs=5)


@pytest.mark.parametrize("source_rate", [8000, 22050, 44100, 48000])
def test_resampling_keeps_duration_and_pitch(tmp_path, source_rate):
    path = write_tone(tmp_path / "tone.wav", frequency_hz=1000.0, sample_rate=source_rate, subtype="PCM_16")

    waveform = load_audio(path, sample_rate=16000)

    assert waveform.shape == (16000,)
    spectrum = np.abs(np.fft.rfft(waveform))
    assert np.argmax(spectrum) == pytest.approx(1000, abs=1)  # 1 Hz bins for a 1 s clip
    assert np.abs(waveform).max() <= 1.0


def test_mixdown_averages_channels(tmp_path):
    left = make_tone(frequency_hz=440.0)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, np.zeros_like(left)], axis=1), 16000, subtype="FLOAT")

    mono = load_audio(path)
    both = load_audio(path, mono=False)

    np.testing.assert_allclose(mono, 0.5 * left, atol=1e-7)
    assert both.shape == (2, 16000)
    np.testing.assert_allclose(both[1], 0.0)


def test_mono_file_with_mono_false_is_two_dimensional(tmp_path):
    path = write_tone(tmp_path / "tone.flac")
    assert load_audio(path, mono=False).shape == (1, 16000)


def test_float_samples_beyond_full_scale_are_clipped_with_a_warning(tmp_path, caplog):
    path = write_float_wav_with(tmp_path / "loud.wav", 3.0)

    with caplog.at_level(logging.WARNING, logger="audio_transfer"):
        waveform = load_audio(path)

    assert waveform[100] == 1.0
    assert "beyond [-1, 1]" in caplog.text and "loud.wav" in caplog.text


def test_audio_info_reads_the_header(tmp_path):
    path = write_tone(tmp_path / "tone.flac", sample_rate=22050, channels=2, subtype="PCM_24")

    info = audio_info(path)

    assert info.to_dict() == {
        "path": str(path),
        "sample_rate": 22050,
        "channels": 2,
        "num_samples": 22050,
        "duration_seconds": 1.0,
        "format": "FLAC",
        "subtype": "PCM_24",
    }
    assert verify_audio(path) == info


def test_save_audio_round_trips_and_creates_folders(tmp_path):
    waveform = np.stack([make_tone(), make_tone(frequency_hz=880.0)])

    path = save_audio(tmp_path / "out" / "stereo.flac", waveform, sample_rate=16000, subtype="PCM_24")

    assert audio_info(path).subtype == "PCM_24"
    np.testing.assert_allclose(load_audio(path, mono=False), waveform, atol=1e-6)


@pytest.mark.parametrize(
    ("waveform", "kwargs", "error", "message"),
    [
        (np.zeros((2, 2, 10)), {}, InputShapeError, "shape (samples,) or (channels, samples)"),
        (np.zeros((16000, 2)), {}, InputShapeError, "Transpose a (samples, channels) array"),
        (np.full(10, np.nan), {}, ConfigError, "NaN or Inf"),
        (np.zeros(10), {"sample_rate": 0}, ConfigError, "sample_rate must be a positive integer"),
        (np.zeros(10), {"name": "x.xyz"}, ConfigError, "unknown audio extension '.xyz'"),
        (np.zeros(10), {"subtype": "VORBIS"}, ConfigError, "subtype='VORBIS'"),
    ],
)
def test_save_audio_rejects_bad_input_with_a_reason(tmp_path, waveform, kwargs, error, message):
    path = tmp_path / kwargs.pop("name", "x.wav")
    with pytest.raises(error) as raised:
        save_audio(path, waveform, **{"sample_rate": 16000, **kwargs})
    assert message in str(raised.value)
    assert str(path) in str(raised.value)


def _empty(path):
    path.write_bytes(b"")
    return path


def _header_only(path):
    sf.write(path, np.zeros((0, 1), np.float32), 16000)
    return path


def _text(path):
    path.write_text("this is not audio\n" * 20)
    return path


@pytest.mark.parametrize(
    ("make", "name", "message"),
    [
        (lambda path: path, "missing.wav", "no such file"),
        (lambda path: path.mkdir() or path, "folder.wav", "it is a folder, not an audio file"),
        (_empty, "empty.wav", "the file is empty (0 bytes)"),
        (_header_only, "silent.wav", "the WAV file holds no audio (0 samples)"),
        (_text, "notes.wav", "not a recognised audio file (libsndfile: Format not recognised"),
        (write_corrupt_flac, "corrupt.flac", "corrupt or truncated (libsndfile: flac decoder lost sync)"),
        (write_truncated_wav, "cut.wav", "the file is truncated: its header declares 32000 bytes"),
        (
            lambda path: write_float_wav_with(path, np.nan),
            "nan.wav",
            "holds 1 NaN/Inf samples (first at sample 100",
        ),
        (lambda path: write_float_wav_with(path, np.inf), "inf.wav", "holds 1 NaN/Inf samples"),
    ],
)
def test_bad_files_raise_audio_decode_error_naming_file_and_reason(tmp_path, make, name, message):
    path = make(tmp_path / name)

    with pytest.raises(AudioDecodeError) as raised:
        load_audio(path)
    with pytest.raises(AudioDecodeError) as raised_by_verify:
        verify_audio(path)

    for error in (raised.value, raised_by_verify.value):
        assert message in str(error)
        assert str(path) in str(error)
        assert isinstance(error, ValueError)
        assert error.__cause__ is None  # no libsndfile traceback chained


def test_corrupt_flac_passes_the_header_probe_but_not_a_decode(tmp_path):
    path = write_corrupt_flac(tmp_path / "corrupt.flac")

    assert audio_info(path).num_samples == 32000
    with pytest.raises(AudioDecodeError, match="lost sync"):
        verify_audio(path)


def test_audio_info_names_missing_and_non_audio_files(tmp_path):
    with pytest.raises(AudioDecodeError, match="no such file"):
        audio_info(tmp_path / "missing.flac")
    with pytest.raises(AudioDecodeError, match="not a recognised audio file"):
        audio_info(_text(tmp_path / "notes.ogg"))


@pytest.mark.parametrize("sample_rate", [0, -16000, 16000.0, True, "16k"])
def test_invalid_sample_rate_argument(tmp_path, sample_rate):
    path = write_tone(tmp_path / "tone.wav")
    with pytest.raises(AudioDecodeError) as raised:
        load_audio(path, sample_rate=sample_rate)
    assert f"sample_rate={sample_rate!r}" in str(raised.value)
    assert "must be a positive integer number of Hz" in str(raised.value)
    assert str(path) in str(raised.value)


def test_audioread_decodes_what_libsndfile_does_not_recognise(tmp_path, monkeypatch):
    path = write_tone(tmp_path / "tone.wav", subtype="PCM_16")

    def unrecognised(*args, **kwargs):
        raise sf.LibsndfileError(1, "Error opening: ")

    monkeypatch.setattr(audio_module.io.sf, "SoundFile", unrecognised)
    waveform = load_audio(path, sample_rate=16000)

    np.testing.assert_allclose(waveform, make_tone(), atol=1e-4)


@pytest.mark.parametrize(
    ("length", "expected"),
    [(3, [0, 1, 2, 3, 0, 0]), (6, [1, 2, 3, 4, 5, 6]), (9, [2, 3, 4, 5, 6, 7])],
)
def test_crop_or_pad_centres(length, expected):
    waveform = np.arange(1, length + 1, dtype=np.float32)
    result = crop_or_pad(waveform, num_samples=6)
    np.testing.assert_array_equal(result, expected)
    assert result.dtype == np.float32


def test_crop_or_pad_rejects_a_bad_length():
    with pytest.raises(ConfigError, match="num_samples must be a positive integer, received 0"):
        crop_or_pad(np.zeros(3), num_samples=0)


def test_resample_keeps_a_tone_and_changes_the_length():
    tone = make_tone(frequency_hz=440.0, sample_rate=22050)
    resampled = resample(tone, orig_sample_rate=22050, target_sample_rate=16000)
    assert resampled.dtype == np.float32 and resampled.shape == (16000,)
    np.testing.assert_allclose(resampled[100:-100], make_tone(frequency_hz=440.0)[100:-100], atol=2e-3)
    stereo = np.stack([tone, -tone])
    assert resample(stereo, orig_sample_rate=22050, target_sample_rate=16000).shape == (2, 16000)
    np.testing.assert_array_equal(resample(tone, orig_sample_rate=22050, target_sample_rate=22050), tone)


@pytest.mark.parametrize("rates", [(0, 16000), (16000, 16000.0), (True, 16000)])
def test_resample_rejects_bad_rates(rates):
    with pytest.raises(ConfigError, match="sample_rate must be a positive integer"):
        resample(np.zeros(10, np.float32), orig_sample_rate=rates[0], target_sample_rate=rates[1])


def test_trim_silence_cuts_quiet_ends_on_frame_boundaries():
    quiet = np.full(800, 1e-3, np.float32)  # -60 dB under the tone's frames
    tone = make_tone(duration_seconds=0.25)
    trimmed = trim_silence(np.concatenate([quiet, tone, quiet]), sample_rate=16000)
    np.testing.assert_array_equal(trimmed, tone)
    # A looser threshold keeps the quiet ends.
    assert len(trim_silence(np.concatenate([quiet, tone, quiet]), sample_rate=16000, top_db=80)) == 5600
    assert trim_silence(np.zeros(1000, np.float32), sample_rate=16000).shape == (0,)
    assert trim_silence(np.zeros(0, np.float32), sample_rate=16000).shape == (0,)


@pytest.mark.parametrize(
    ("waveform", "arguments", "error"),
    [
        (np.zeros((2, 100)), {}, InputShapeError),
        (np.zeros(100), {"sample_rate": 0}, ConfigError),
        (np.zeros(100), {"top_db": 0}, ConfigError),
        (np.zeros(100), {"frame_seconds": -1.0}, ConfigError),
    ],
)
def test_trim_silence_rejects_bad_arguments(waveform, arguments, error):
    with pytest.raises(error):
        trim_silence(waveform, **{"sample_rate": 16000, **arguments})
