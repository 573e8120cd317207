"""TFLite Model Metadata: written by us, read back by us, by MediaPipe's schema and by its AudioClassifier."""

from __future__ import annotations

import importlib.util
import io
import zipfile

import numpy as np
import pytest
from ai_edge_litert.tools import flatbuffer_utils
from export_support import (
    LABELS,
    NUM_SAMPLES,
    SAMPLE_RATE,
    export_tones,
    tone_clips,
    trained_classifier,
    trained_log_mel_classifier,
)

from audio_transfer.errors import ExportError
from audio_transfer.export import TFLiteClassifier, TFLiteMetadata

HAS_MEDIAPIPE = importlib.util.find_spec("mediapipe") is not None
needs_mediapipe = pytest.mark.skipif(
    not HAS_MEDIAPIPE, reason="mediapipe is not installed (pip install -e .[dev])"
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("metadata") / "classifier.tflite"
    return export_tones(trained_classifier(), out)


def test_labels_and_sample_rate_are_recovered_from_the_file(exported):
    metadata = TFLiteMetadata.read(exported.path.read_bytes())
    assert metadata.labels == LABELS
    assert (metadata.sample_rate, metadata.channels) == (SAMPLE_RATE, 1)


def test_attach_replaces_existing_metadata(exported):
    relabelled = TFLiteMetadata(labels=("a", "b", "c"), sample_rate=8000).attach(exported.path.read_bytes())
    assert TFLiteMetadata.read(relabelled) == TFLiteMetadata(labels=("a", "b", "c"), sample_rate=8000)
    with zipfile.ZipFile(io.BytesIO(relabelled)) as files:
        assert files.namelist() == ["labels.txt"]


def test_file_with_metadata_still_runs_in_litert(exported):
    waveforms, _ = tone_clips(3, seed=4)
    probabilities = TFLiteClassifier.from_file(exported.path).predict(waveforms)
    assert probabilities.shape == (3, len(LABELS))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_file_without_metadata_is_reported(exported):
    content = exported.path.read_bytes()
    with pytest.raises(ExportError, match="no Model Metadata"):
        TFLiteMetadata.read(_strip_metadata(content))


@needs_mediapipe
def test_mediapipe_schema_reads_our_metadata():
    from mediapipe.tasks.metadata import metadata_schema_py_generated as schema

    buffer = TFLiteMetadata(labels=LABELS, sample_rate=SAMPLE_RATE).to_flatbuffer()
    assert schema.ModelMetadata.ModelMetadataBufferHasIdentifier(buffer, 0)
    metadata = schema.ModelMetadataT.InitFromObj(schema.ModelMetadata.GetRootAs(buffer, 0))
    assert metadata.minParserVersion == b"1.3.0"
    (subgraph,) = metadata.subgraphMetadata
    (input_tensor,), (output_tensor,) = subgraph.inputTensorMetadata, subgraph.outputTensorMetadata
    assert input_tensor.content.contentPropertiesType == schema.ContentProperties.AudioProperties
    assert (
        input_tensor.content.contentProperties.sampleRate,
        input_tensor.content.contentProperties.channels,
    ) == (
        SAMPLE_RATE,
        1,
    )
    assert output_tensor.content.contentPropertiesType == schema.ContentProperties.FeatureProperties
    (labels_file,) = output_tensor.associatedFiles
    assert (labels_file.name, labels_file.type) == (
        b"labels.txt",
        schema.AssociatedFileType.TENSOR_AXIS_LABELS,
    )


@pytest.fixture(scope="module")
def exported_int8(tmp_path_factory):
    """What a phone app would ship: int8 with float32 input/output, log-mel front-end in float."""
    out = tmp_path_factory.mktemp("metadata") / "classifier_int8.tflite"
    return export_tones(
        trained_log_mel_classifier(),
        out,
        quantize="int8",
        representative_data=tone_clips(100, seed=2)[0],
    )


@needs_mediapipe
@pytest.mark.parametrize("variant", ["exported", "exported_int8"])
def test_mediapipe_audio_classifier_runs_the_export_and_returns_our_labels(variant, request):
    exported = request.getfixturevalue(variant)
    from mediapipe.tasks.python.audio import audio_classifier
    from mediapipe.tasks.python.components.containers import audio_data
    from mediapipe.tasks.python.core import base_options

    waveforms, label_indices = tone_clips(2, seed=5)
    expected = TFLiteClassifier.from_file(exported.path).predict(waveforms)
    options = audio_classifier.AudioClassifierOptions(
        base_options=base_options.BaseOptions(model_asset_path=str(exported.path)), max_results=len(LABELS)
    )
    with audio_classifier.AudioClassifier.create_from_options(options) as classifier:
        # Two clips back to back: MediaPipe cuts the stream into model-sized chunks, one result each.
        results = classifier.classify(
            audio_data.AudioData.create_from_array(waveforms.reshape(-1), SAMPLE_RATE)
        )
    assert [result.timestamp_ms for result in results] == [0, 1000 * NUM_SAMPLES // SAMPLE_RATE]
    for result, scores, label_index in zip(results, expected, label_indices, strict=True):
        categories = result.classifications[0].categories
        assert {category.category_name for category in categories} == set(LABELS)
        assert categories[0].category_name == LABELS[label_index]
        for category in categories:
            assert category.score == pytest.approx(scores[category.index], abs=1e-5)


@needs_mediapipe
def test_mediapipe_refuses_the_file_without_metadata(exported, tmp_path):
    from mediapipe.tasks.python.audio import audio_classifier

    bare = tmp_path / "bare.tflite"
    bare.write_bytes(_strip_metadata(exported.path.read_bytes()))
    with pytest.raises(Exception, match="Metadata"):
        audio_classifier.AudioClassifier.create_from_model_path(str(bare))


def _strip_metadata(content: bytes) -> bytes:
    """The model flatbuffer without its TFLITE_METADATA entry (the appended files are dropped too)."""
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    model.metadata = [entry for entry in model.metadata if entry.name != b"TFLITE_METADATA"]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
