"""The numpy matrices behind the front-ends against the libraries whose semantics they copy."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import scipy.fft
import scipy.signal
import tensorflow as tf

from audio_transfer.features import filters


@pytest.mark.parametrize(
    ("sample_rate", "fft_length", "num_mel_bins", "lower_edge_hz", "upper_edge_hz", "htk", "norm"),
    [
        (16000, 512, 32, 60.0, 3800.0, False, "slaney"),  # speech_embedding
        (16000, 400, 40, 0.0, 8000.0, False, "slaney"),  # ge2e
        (16000, 512, 64, 125.0, 7500.0, True, None),
        (22050, 2048, 128, 0.0, 11025.0, False, None),
        (8000, 256, 20, 20.0, 3000.0, True, "slaney"),
    ],
)
def test_librosa_mel_filterbank_is_bit_identical_to_librosa(
    sample_rate, fft_length, num_mel_bins, lower_edge_hz, upper_edge_hz, htk, norm
):
    expected = librosa.filters.mel(
        sr=sample_rate,
        n_fft=fft_length,
        n_mels=num_mel_bins,
        fmin=lower_edge_hz,
        fmax=upper_edge_hz,
        htk=htk,
        norm=norm,
    ).T
    ours = filters.mel_filterbank(
        sample_rate=sample_rate,
        fft_length=fft_length,
        num_mel_bins=num_mel_bins,
        lower_edge_hz=lower_edge_hz,
        upper_edge_hz=upper_edge_hz,
        mel_scale="htk" if htk else "slaney",
        mel_norm=norm,
        mel_filterbank="librosa",
    )
    assert ours.shape == expected.shape
    np.testing.assert_array_equal(ours, expected)


@pytest.mark.parametrize("mel_scale", ["slaney", "htk"])
def test_hz_mel_conversions_match_librosa_and_invert(mel_scale):
    hz = np.array([0.0, 60.0, 999.0, 1000.0, 1001.0, 3800.0, 8000.0])
    mel = filters.hz_to_mel(hz, mel_scale=mel_scale)
    np.testing.assert_array_equal(mel, librosa.hz_to_mel(hz, htk=mel_scale == "htk"))
    np.testing.assert_allclose(filters.mel_to_hz(mel, mel_scale=mel_scale), hz, atol=1e-9)


def test_tensorflow_mel_filterbank_matches_linear_to_mel_weight_matrix():
    ours = filters.mel_filterbank(
        sample_rate=16000,
        fft_length=512,
        num_mel_bins=64,
        lower_edge_hz=125.0,
        upper_edge_hz=7500.0,
        mel_scale="htk",
        mel_norm=None,
        mel_filterbank="tensorflow",
    )
    expected = tf.signal.linear_to_mel_weight_matrix(64, 257, 16000, 125.0, 7500.0).numpy()
    np.testing.assert_allclose(ours, expected, atol=2e-5)  # TensorFlow computes it in float32
    assert not ours[0].any(), "the DC bin must carry no weight"


@pytest.mark.parametrize("window", ["hann", "hamming"])
@pytest.mark.parametrize("periodic", [True, False])
def test_stft_window_matches_scipy(window, periodic):
    expected = scipy.signal.get_window(window, 400, fftbins=periodic)
    np.testing.assert_allclose(filters.stft_window(window, frame_length=400, periodic=periodic), expected)


@pytest.mark.parametrize(
    ("frame_length", "fft_length", "placement", "bins"),
    [
        (400, 512, "center", np.arange(3, 200)),  # speech_embedding-like, centred window
        (400, 512, "left", np.arange(0, 257)),  # every bin
        (400, 400, "center", np.arange(1, 80)),  # fft_length not a power of two (ge2e)
        (25, 32, "left", np.array([0, 5, 16])),  # sparse bins
        (7, 7, "left", np.arange(4)),  # prime fft_length: a single stage
    ],
)
def test_two_stage_dft_is_the_rfft_of_the_placed_window(frame_length, fft_length, placement, bins, rng):
    frame = rng.standard_normal(frame_length)
    window = filters.stft_window("hann", frame_length=frame_length, periodic=True)
    offset = filters.window_offset(
        frame_length=frame_length, fft_length=fft_length, window_placement=placement
    )
    dft = filters.TwoStageDFT.create(
        frame_length=frame_length, fft_length=fft_length, offset=offset, bins=bins
    )
    padded = np.zeros(dft.steps * dft.inner)
    padded[:frame_length] = frame * window
    residues, multiples = dft.residues, dft.multiples
    stage1 = padded.reshape(dft.steps, dft.inner).T @ dft.stage1  # (inner, residues * 2)
    stage1 = stage1.reshape(dft.inner, residues, 2).transpose(1, 0, 2).reshape(residues, 2 * dft.inner)
    stage2 = np.einsum("ci,cio->co", stage1, dft.stage2).reshape(residues, multiples, 2)
    spectrum = stage2.transpose(2, 1, 0).reshape(2, multiples * residues)[:, dft.output_index]
    placed = np.zeros(fft_length)
    placed[offset : offset + frame_length] = frame * window
    expected = np.fft.rfft(placed)[bins]
    np.testing.assert_allclose(spectrum, [expected.real, expected.imag], atol=1e-9)


def test_two_stage_dft_takes_fewer_multiplications_and_constants_than_one_stage():
    bins = np.arange(2, 122)  # the bins speech_embedding's mel filters use
    dft = filters.TwoStageDFT.create(frame_length=400, fft_length=512, offset=56, bins=bins)
    # inner = 16: stage 1 (25, 2 * 32), stage 2 (32, 2 * 16, 2 * 4).
    assert (dft.inner, dft.steps, dft.residues, dft.multiples) == (16, 25, 32, 4)
    assert dft.multiplications == 16 * 25 * 64 + 32 * 32 * 8
    one_stage = 400 * 2 * len(bins)  # multiplications and constants of the one-stage kernel
    assert dft.multiplications < 0.4 * one_stage
    assert dft.num_constants < one_stage / 9


def test_dct_matrix_is_orthonormal_dct_ii(rng):
    x = rng.standard_normal((5, 40))
    matrix = filters.dct_matrix(num_mel_bins=40, num_mfcc=13)
    np.testing.assert_allclose(x @ matrix, scipy.fft.dct(x, type=2, norm="ortho")[:, :13], atol=1e-12)
