"""Streaming is a property of a base: any StreamableBase streams through detect, evaluate-stream and the
streaming TFLite export. A second streaming base (tests/tiny_streaming_base.py) proves it."""

import contextlib
import io
import json

import keras
import numpy as np
import pytest
from streaming_support import (
    CLIP_SECONDS,
    LABELS,
    SAMPLE_RATE,
    background,
    chirp,
    plant,
    save_run,
    window_posteriors,
    write_wav,
)
from tiny_conv_base import tiny_base
from tiny_streaming_base import (
    CONTEXT_SECONDS,
    HOP_SAMPLES,
    KERNEL_FRAMES,
    TinyStreamingBase,
    tiny_spotter,
    tiny_streaming_base,
)

from audio_transfer.bases import StreamableBase, load_base
from audio_transfer.bases.streamable_base import as_streamable, streamable_base_names
from audio_transfer.cli.main import main
from audio_transfer.errors import ConfigError, InputShapeError
from audio_transfer.streaming import (
    KeywordDetector,
    StreamingSpotter,
    TFLiteStreamingSpotter,
    export_streaming_tflite,
)
from audio_transfer.tasks import KeywordSpotter

# A 1 s clip with 0.1 s of context each side spans 56 embeddings of 0.1 s every 20 ms.
PER_CLIP = (
    1
    + (round((CLIP_SECONDS + 2 * CONTEXT_SECONDS) * SAMPLE_RATE) - KERNEL_FRAMES * HOP_SAMPLES) // HOP_SAMPLES
)


def _stream(seconds: float = 4.0) -> np.ndarray:
    return plant(
        plant(background(seconds, seed=11), chirp("rise"), at_seconds=0.9), chirp("fall"), at_seconds=2.6
    )


def _step_embeddings(base: StreamableBase, stream: np.ndarray) -> np.ndarray:
    """``base.stream_step`` hop by hop from the initial state: ``(hops, embedding_dim)``."""
    state, embeddings = base.initial_stream_state(), []
    for hop in stream.reshape(-1, base.stream_hop_samples):
        embedding, state = base.stream_step(hop[np.newaxis], state)
        embeddings.append(keras.ops.convert_to_numpy(embedding)[0, 0])
    return np.stack(embeddings)


@pytest.mark.parametrize("name", ["tiny", "speech_embedding"])
def test_stream_steps_give_the_embeddings_of_whole_windows(name):
    base = tiny_streaming_base() if name == "tiny" else load_base("speech_embedding")
    hop, warmup = base.stream_hop_samples, base.stream_warmup_hops
    window = base.min_samples  # the audio behind one embedding
    count = 6
    stream = background((count + warmup) * hop / SAMPLE_RATE, seed=3, level=0.1)
    stepped = _step_embeddings(base, stream)
    assert stepped.shape == (count + warmup, base.embedding_dim)
    whole = np.stack(
        [
            keras.ops.convert_to_numpy(base(stream[np.newaxis, k * hop : k * hop + window]))[0, 0]
            for k in range(count)
        ]
    )
    np.testing.assert_allclose(stepped[warmup:], whole, atol=1e-4)
    np.testing.assert_allclose(base.stream_embeddings(stream[np.newaxis], count=count)[0], whole, atol=1e-4)
    assert np.ptp(whole) > 0.1  # the embeddings differ between windows: the comparison can fail


def test_tiny_base_streams_by_the_default_scan_and_speech_embedding_by_its_own_pass():
    assert type(tiny_streaming_base()).stream_embeddings is StreamableBase.stream_embeddings
    assert type(load_base("speech_embedding")).stream_embeddings is not StreamableBase.stream_embeddings
    assert tiny_streaming_base().stream_state_size == (KERNEL_FRAMES - 1) * 12


@pytest.mark.parametrize("stride_seconds", [0.08, 0.02])
def test_detector_on_a_second_streaming_base_equals_the_whole_window_scores(stride_seconds):
    spotter = tiny_spotter()
    detector = KeywordDetector(spotter, clip_seconds=CLIP_SECONDS, stride_seconds=stride_seconds)
    assert detector.uses_embeddings
    stream = _stream()
    streamed = detector.posteriors(stream)
    expected = window_posteriors(spotter, stream, stride_samples=detector.stride_samples)
    assert streamed.shape == expected.shape == (detector.num_windows(len(stream)), len(LABELS))
    np.testing.assert_allclose(streamed, expected, atol=1e-5)
    assert np.ptp(expected[:, 1:]) > 0.2  # the scores move with the chirps


def test_streaming_tflite_of_a_second_base_runs_in_litert_and_matches_keras(tmp_path):
    spotter = tiny_spotter()
    result = export_streaming_tflite(spotter, clip_seconds=CLIP_SECONDS, out=tmp_path / "tiny.tflite")
    streaming = StreamingSpotter(spotter, clip_seconds=CLIP_SECONDS)
    description = result.description
    assert description["hop_samples"] == HOP_SAMPLES
    assert description["state_size"] == streaming.state_size == (KERNEL_FRAMES - 1) * 12 + (PER_CLIP - 1) * 8
    assert description["warmup_hops"] == streaming.warmup_hops == KERNEL_FRAMES - 1 + PER_CLIP - 1
    assert "FULLY_CONNECTED" in result.ops and "CONV_2D" in result.ops

    stream = _stream(3.2)
    litert = TFLiteStreamingSpotter.from_file(result.path).run(stream)
    state, keras_scores = streaming.initial_state(), []
    for hop in stream.reshape(-1, HOP_SAMPLES):
        outputs = streaming.step(hop[np.newaxis], state)
        keras_scores.append(outputs["scores"].numpy()[0])
        state = outputs["next_state"].numpy()
    np.testing.assert_allclose(litert, np.stack(keras_scores), atol=1e-5)  # TFLite equals TensorFlow

    expected = window_posteriors(spotter, stream, stride_samples=HOP_SAMPLES)
    warmup = streaming.warmup_hops
    np.testing.assert_allclose(litert[warmup : warmup + len(expected)], expected, atol=1e-5)


def test_cli_detect_and_streaming_export_use_the_interface(tmp_path):
    run_dir = save_run(tiny_spotter(), tmp_path / "run")
    audio = write_wav(tmp_path / "stream.wav", _stream())
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(["detect", str(run_dir), str(audio), "--json"]) == 0
    detections = json.loads(stdout.getvalue())["detections"]
    assert detections  # the chirps fire
    expected = KeywordDetector(tiny_spotter(), clip_seconds=CLIP_SECONDS).detect(_stream())
    assert [(d["label"], d["score"]) for d in detections] == [
        (d.label, pytest.approx(d.score, abs=1e-5)) for d in expected
    ]

    out = tmp_path / "tiny_stream.tflite"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(
            ["export", str(run_dir), "--format", "tflite", "--streaming", "--out", str(out), "--json"]
        )
    assert code == 0 and json.loads(stdout.getvalue())["hop_samples"] == HOP_SAMPLES
    assert TFLiteStreamingSpotter.from_file(out).hop_samples == HOP_SAMPLES


def test_a_base_that_does_not_stream_is_named_with_the_bases_that_do(tmp_path):
    assert "speech_embedding" in streamable_base_names() and "yamnet" not in streamable_base_names()
    assert as_streamable(tiny_streaming_base(), purpose="x").stream_hop_samples == HOP_SAMPLES
    spotter = KeywordSpotter(tiny_base(), ["_silence_", "beep"])
    with pytest.raises(ConfigError, match=r"TinyConvBase does not\. Bases that stream: speech_embedding"):
        StreamingSpotter(spotter, clip_seconds=1.0)
    with pytest.raises(ConfigError, match="TinyConvBase"):
        export_streaming_tflite(spotter, clip_seconds=1.0, out=tmp_path / "x.tflite")
    assert not (tmp_path / "x.tflite").exists()


class _MisalignedBase(TinyStreamingBase):
    """Streams hops twice as long as the hop_seconds it declares."""

    @property
    def stream_hop_samples(self) -> int:
        return 2 * HOP_SAMPLES


def test_a_base_whose_stream_hop_is_not_its_hop_seconds_is_refused():
    spotter = KeywordSpotter(_MisalignedBase(), ["_silence_", "beep"])
    with pytest.raises(ConfigError, match=r"hops of 640 samples but declares hop_seconds=0.02 \(320"):
        KeywordDetector(spotter, clip_seconds=1.0)


def test_stream_embeddings_check_their_arguments():
    base = tiny_streaming_base()
    with pytest.raises(InputShapeError, match=r"\(batch, samples\), received shape \(320,\)"):
        base.stream_embeddings(np.zeros(320, np.float32), count=1)
    with pytest.raises(ConfigError, match="positive number of embeddings, received 0"):
        base.stream_embeddings(np.zeros((1, 320), np.float32), count=0)
