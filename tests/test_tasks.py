import json

import keras
import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf
from conftest import make_tone
from tiny_conv_base import tiny_base

from audio_transfer.audio import crop_or_pad, load_audio, resample
from audio_transfer.errors import AudioDecodeError, ConfigError, DatasetError, InputShapeError
from audio_transfer.tasks import (
    AudioClassifier,
    KeywordSpotter,
    SpeakerClassifier,
    SpeakerVerifier,
    Task,
)

TASKS = {
    "kws": lambda: KeywordSpotter(tiny_base(), ["yes", "no", "_silence_", "_unknown_"]),
    "kws_attention": lambda: KeywordSpotter(tiny_base(), ["yes", "no"], pooling="attention", hidden_units=4),
    "speaker_id": lambda: SpeakerClassifier(tiny_base(), ["ann", "bob", "eve"]),
    "classify": lambda: AudioClassifier(tiny_base(), ["dog", "rain"], dropout=0.1),
    "verifier": lambda: SpeakerVerifier(tiny_base()),
    "verifier_projection": lambda: SpeakerVerifier(
        tiny_base(), projection_dim=6, pooling="attentive_statistics"
    ),
}


def _clips(rng, n=5, seconds=1.0):
    return rng.normal(scale=0.3, size=(n, round(16000 * seconds))).astype("float32")


def _perturb_head(task: Task, rng) -> None:
    # Random head weights, so a round trip that lost them would show.
    for weight in task.head.weights:
        weight.assign(rng.normal(scale=0.5, size=weight.shape).astype("float32"))


@pytest.mark.parametrize("name", list(TASKS))
def test_every_task_round_trips_through_keras_file_in_safe_mode(tmp_path, rng, name):
    task = TASKS[name]()
    _perturb_head(task, rng)
    x = _clips(rng)
    before = keras.ops.convert_to_numpy(task(x))
    path = tmp_path / f"{name}.keras"
    task.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is type(task)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), before, rtol=1e-5, atol=1e-6)
    if hasattr(task, "labels"):
        assert loaded.labels == task.labels


def test_speaker_classifier_config_names_speakers():
    task = TASKS["speaker_id"]()
    assert task.get_config()["speakers"] == ["ann", "bob", "eve"]
    assert task.speakers == ("ann", "bob", "eve")
    assert task.head.pooling_name == "attentive_statistics"


def test_task_predicts_on_a_tf_data_dataset(rng):
    task = TASKS["kws"]()
    x = _clips(rng, n=6)
    dataset = tf.data.Dataset.from_tensor_slices(x).batch(4)
    np.testing.assert_allclose(task.predict(dataset, verbose=0), task.predict_waveforms(x), rtol=1e-5)


def test_head_model_shares_weights_with_the_task(rng):
    task = TASKS["kws_attention"]()
    _perturb_head(task, rng)
    x = _clips(rng, n=3)
    assert task.context_samples == 5600  # keyword spotters add 0.35 s of silence around the clip
    frames = task.base.predict(keras.ops.convert_to_numpy(task.with_context(x)), verbose=0)
    assert frames.shape[1] == task.base.num_windows(16000 + 2 * 5600)
    np.testing.assert_allclose(
        task.head_model().predict(frames, verbose=0), task.predict_waveforms(x), rtol=1e-5, atol=1e-6
    )


def test_predict_waveforms_accepts_clips_of_different_lengths(rng):
    task = TASKS["classify"]()
    clips = [_clips(rng, 1, seconds)[0] for seconds in (0.5, 1.0, 0.5, 2.0)]
    together = task.predict_waveforms(clips)
    alone = np.concatenate([task.predict_waveforms(clip) for clip in clips])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6)
    with pytest.raises(InputShapeError, match=r"clip 1 has shape \(2, 3\)"):
        task.predict_waveforms([clips[0], np.zeros((2, 3))])


def test_classify_returns_top_k_labels_most_likely_first(rng):
    task = TASKS["kws"]()
    _perturb_head(task, rng)
    x = _clips(rng, n=3)
    probabilities = task.predict_waveforms(x)
    top = task.classify(x, top_k=2)
    for row, ranked in zip(probabilities, top, strict=True):
        assert [label for label, _ in ranked] == [task.labels[i] for i in np.argsort(-row)[:2]]
        assert ranked[0][1] >= ranked[1][1]
    with pytest.raises(ConfigError, match="between 1 and 4, received 5"):
        task.classify(x, top_k=5)


def test_duplicate_labels_are_refused_by_name():
    with pytest.raises(ConfigError, match="repeated: yes"):
        KeywordSpotter(tiny_base(), ["yes", "no", "yes"])


def test_task_refuses_a_base_that_is_not_an_audio_base():
    with pytest.raises(ConfigError, match="received Dense"):
        KeywordSpotter(keras.layers.Dense(3), ["a", "b"])


def test_bare_verifier_embedding_is_normalised_mean_of_base_windows(rng):
    verifier = SpeakerVerifier(tiny_base())
    x = _clips(rng, n=2)
    frames = verifier.base.predict(x, verbose=0).mean(axis=1)
    expected = frames / np.linalg.norm(frames, axis=-1, keepdims=True)
    np.testing.assert_allclose(verifier.embed_clips(x), expected, rtol=1e-4, atol=1e-5)
    assert verifier.embedding_dim == 8


def test_verifier_scores_the_enrolled_voice_above_another(tmp_path):
    verifier = SpeakerVerifier(tiny_base())
    low = [make_tone(frequency_hz=f, duration_seconds=1.0) for f in (300, 320)]
    high = [make_tone(frequency_hz=f, duration_seconds=0.7) for f in (3000, 3200)]
    verifier.enroll("low", low)
    verifier.enroll("high", high)
    probe = make_tone(frequency_hz=310, duration_seconds=1.3)
    assert verifier.verify(probe, "low") > verifier.verify(probe, "high")
    assert verifier.verify(low[0], "low") <= 1.0 + 1e-6

    path = verifier.save_enrollments(tmp_path / "enrollments.json")
    document = json.loads(path.read_text())
    assert document["embedding_dim"] == 8 and len(document["speakers"]["low"]) == 2
    other = SpeakerVerifier(verifier.base)
    assert other.load_enrollments(path) == ["high", "low"]
    assert other.verify(probe, "low") == pytest.approx(verifier.verify(probe, "low"), abs=1e-5)
    np.testing.assert_allclose(other.centroid("high"), verifier.centroid("high"), atol=1e-6)


def test_enrolling_again_adds_clips_and_remove_forgets(rng):
    verifier = SpeakerVerifier(tiny_base())
    x = _clips(rng, n=3)
    verifier.enroll("ann", x[:1])
    centroid = verifier.enroll("ann", x[1:])
    expected = verifier.embed_clips(x).mean(axis=0)
    np.testing.assert_allclose(centroid, expected / np.linalg.norm(expected), rtol=1e-5)
    verifier.remove("ann")
    with pytest.raises(ConfigError, match=r"'ann' is not enrolled.*nobody yet"):
        verifier.verify(x[0], "ann")


def test_enrollments_from_another_embedding_size_are_refused(tmp_path, rng):
    small = SpeakerVerifier(tiny_base(), projection_dim=4)
    small.enroll("ann", _clips(rng, n=1))
    path = small.save_enrollments(tmp_path / "e.json")
    with pytest.raises(ConfigError, match="4-d embeddings but this model makes 8-d"):
        SpeakerVerifier(tiny_base()).load_enrollments(path)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(DatasetError, match="not an audio_transfer enrollments file"):
        small.load_enrollments(tmp_path / "bad.json")


def test_classify_and_predict_accept_audio_files_decoded_at_the_task_rate(tmp_path, rng):
    task = TASKS["kws"]()
    _perturb_head(task, rng)
    clips = [make_tone(frequency_hz=f, duration_seconds=s) for f, s in ((400, 0.8), (1200, 1.3))]
    paths = [tmp_path / "a.wav", tmp_path / "b.flac"]
    sf.write(paths[0], clips[0], 16000)
    sf.write(paths[1], resample(clips[1], orig_sample_rate=16000, target_sample_rate=8000), 8000)
    decoded = [load_audio(path, sample_rate=16000) for path in paths]
    np.testing.assert_allclose(
        task.predict_waveforms(paths), task.predict_waveforms(decoded), rtol=1e-5, atol=1e-6
    )
    assert task.classify(str(paths[0]), top_k=2) == task.classify(decoded[0], top_k=2)
    # clip_seconds crops and pads as the training clips were: centre, to the same length for every input.
    fitted = [crop_or_pad(clip, num_samples=16000) for clip in decoded]
    np.testing.assert_allclose(
        task.predict_waveforms([paths[0], decoded[1]], clip_seconds=1.0),
        task.predict_waveforms(np.stack(fitted)),
        rtol=1e-5,
        atol=1e-6,
    )


def test_load_clips_raises_naming_a_bad_file_or_skips_and_lists_it(tmp_path):
    task = TASKS["classify"]()
    good, bad = tmp_path / "good.wav", tmp_path / "bad.wav"
    sf.write(good, make_tone(duration_seconds=0.3), 16000)
    bad.write_bytes(b"not audio")
    with pytest.raises(AudioDecodeError, match=r"bad\.wav"):
        task.classify([good, bad])
    clips, kept, skipped = task.load_clips([bad, good], clip_seconds=0.5, skip_undecodable=True)
    assert kept == [good] and [clip.shape for clip in clips] == [(8000,)]
    assert [item.path for item in skipped] == [str(bad)] and skipped[0].reason


def test_verifier_verifies_and_enrolls_audio_files(tmp_path):
    verifier = SpeakerVerifier(tiny_base())
    tones = [make_tone(frequency_hz=f, duration_seconds=1.0) for f in (300, 320, 3000)]
    paths = []
    for index, tone in enumerate(tones):
        paths.append(tmp_path / f"clip{index}.wav")
        sf.write(paths[-1], tone, 16000)
    verifier.enroll("low", paths[:2])
    expected = float(verifier.embed_clips(load_audio(paths[2]))[0] @ verifier.centroid("low"))
    assert verifier.verify(paths[2], "low") == pytest.approx(expected, abs=1e-6)
    mean = verifier.embed_clips([load_audio(path) for path in paths[:2]]).mean(axis=0)
    np.testing.assert_allclose(verifier.centroid("low"), mean / np.linalg.norm(mean), atol=1e-6)
