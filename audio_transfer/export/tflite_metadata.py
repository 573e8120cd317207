"""TFLite Model Metadata for audio classifiers, written and read with the ``flatbuffers`` package alone.

The layout follows the public metadata schema (``metadata_schema.fbs``, version 1.5.0, shipped by
tflite-support and MediaPipe) for the few tables an audio classifier needs:

- ``ModelMetadata`` (file identifier ``M001``) with one ``SubGraphMetadata``;
- input ``TensorMetadata`` whose ``Content`` holds ``AudioProperties`` (sample rate, channels);
- output ``TensorMetadata`` whose ``Content`` holds ``FeatureProperties`` and whose associated file
  ``labels.txt`` has type ``TENSOR_AXIS_LABELS``.

As the metadata populators of tflite-support and MediaPipe do, the metadata flatbuffer goes into a model
buffer named by a ``TFLITE_METADATA`` entry of the model, and the associated files are appended to the
``.tflite`` file as a zip archive. MediaPipe Tasks (``AudioClassifier``) and tflite-support read such files;
a TFLite interpreter ignores the appended bytes.

Example::

    metadata = TFLiteMetadata(labels=("yes", "no"), sample_rate=16000)
    model_with_metadata = metadata.attach(model_bytes)
    TFLiteMetadata.read(model_with_metadata).labels    # ('yes', 'no')
"""

from __future__ import annotations

import dataclasses
import io
import struct
import zipfile
from collections.abc import Sequence

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema_fb
from ai_edge_litert.tools import flatbuffer_utils
from flatbuffers import number_types
from flatbuffers.table import Table

from audio_transfer.errors import ExportError

METADATA_FIELD_NAME = "TFLITE_METADATA"
METADATA_FILE_IDENTIFIER = b"M001"
LABELS_FILE_NAME = "labels.txt"
# AudioProperties appeared in metadata schema 1.3.0; nothing newer is written here.
MIN_PARSER_VERSION = "1.3.0"

# Enum values and field slots of metadata_schema.fbs.
_TENSOR_AXIS_LABELS = 2  # AssociatedFileType
_FEATURE_PROPERTIES = 1  # ContentProperties union type
_AUDIO_PROPERTIES = 4  # ContentProperties union type
_MODEL_METADATA_FIELDS = {
    "name": 0,
    "description": 1,
    "version": 2,
    "subgraph_metadata": 3,
    "min_parser_version": 7,
}
_SUBGRAPH_FIELDS = {"name": 0, "input_tensor_metadata": 2, "output_tensor_metadata": 3}
_TENSOR_FIELDS = {"name": 0, "description": 1, "content": 3, "associated_files": 6}
_CONTENT_FIELDS = {"content_properties_type": 0, "content_properties": 1}
_AUDIO_FIELDS = {"sample_rate": 0, "channels": 1}
_ASSOCIATED_FILE_FIELDS = {"name": 0, "description": 1, "type": 2}
_NUM_FIELDS = {"model": 8, "subgraph": 10, "tensor": 7, "content": 3, "audio": 2, "associated_file": 5}


@dataclasses.dataclass(frozen=True)
class TFLiteMetadata:
    """The Model Metadata of an exported audio classifier.

    Args:
        labels: class names in output index order (stored as ``labels.txt``, one per line).
        sample_rate: rate in Hz of the waveform input.
        channels: number of interleaved audio channels of the input (1 for our classifiers).
        name: model name shown by metadata tools.
        description: one-line description shown by metadata tools.
    """

    labels: tuple[str, ...]
    sample_rate: int
    channels: int = 1
    name: str = "audio_classifier"
    description: str = "Classifies a clip of raw audio; outputs class probabilities."

    def to_flatbuffer(self) -> bytes:
        """The ``ModelMetadata`` flatbuffer (identifier ``M001``)."""
        builder = flatbuffers.Builder(1024)
        input_metadata = _tensor_metadata(
            builder,
            name="waveform",
            description=(
                f"Mono audio, {self.sample_rate} Hz; float32 in [-1, 1], or int16 PCM when the tensor "
                "is int16."
            ),
            content=_audio_content(builder, sample_rate=self.sample_rate, channels=self.channels),
        )
        labels_file = _associated_file(
            builder, name=LABELS_FILE_NAME, description="Class labels, one per line, in output order."
        )
        output_metadata = _tensor_metadata(
            builder,
            name="scores",
            description="Probability of each class.",
            content=_feature_content(builder),
            associated_files=[labels_file],
        )
        subgraph = _table(
            builder,
            _NUM_FIELDS["subgraph"],
            offsets={
                _SUBGRAPH_FIELDS["name"]: builder.CreateString(self.name),
                _SUBGRAPH_FIELDS["input_tensor_metadata"]: _offset_vector(builder, [input_metadata]),
                _SUBGRAPH_FIELDS["output_tensor_metadata"]: _offset_vector(builder, [output_metadata]),
            },
        )
        root = _table(
            builder,
            _NUM_FIELDS["model"],
            offsets={
                _MODEL_METADATA_FIELDS["name"]: builder.CreateString(self.name),
                _MODEL_METADATA_FIELDS["description"]: builder.CreateString(self.description),
                _MODEL_METADATA_FIELDS["subgraph_metadata"]: _offset_vector(builder, [subgraph]),
                _MODEL_METADATA_FIELDS["min_parser_version"]: builder.CreateString(MIN_PARSER_VERSION),
            },
        )
        builder.Finish(root, file_identifier=METADATA_FILE_IDENTIFIER)
        return bytes(builder.Output())

    def attach(self, model: bytes) -> bytes:
        """``model`` (a ``.tflite`` flatbuffer without appended files) with this metadata and labels file.

        An existing ``TFLITE_METADATA`` entry is replaced.
        """
        if not flatbuffers.util.BufferHasIdentifier(model, 0, b"TFL3"):
            raise ExportError(
                "Cannot attach metadata: the buffer is not a TFLite model (no TFL3 identifier)."
            )
        tflite_model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model))
        _check_one_input_one_output(tflite_model)
        buffer = schema_fb.BufferT()
        buffer.data = np.frombuffer(self.to_flatbuffer(), dtype=np.uint8)
        tflite_model.metadata = [
            entry for entry in (tflite_model.metadata or []) if _name(entry.name) != METADATA_FIELD_NAME
        ]
        tflite_model.buffers.append(buffer)
        entry = schema_fb.MetadataT()
        entry.name = METADATA_FIELD_NAME
        entry.buffer = len(tflite_model.buffers) - 1
        tflite_model.metadata.append(entry)
        archive = io.BytesIO()
        archive.write(flatbuffer_utils.convert_object_to_bytearray(tflite_model))
        with zipfile.ZipFile(archive, mode="a", compression=zipfile.ZIP_STORED) as files:
            files.writestr(LABELS_FILE_NAME, "".join(f"{label}\n" for label in self.labels))
        return archive.getvalue()

    @classmethod
    def read(cls, model: bytes) -> TFLiteMetadata:
        """The metadata of a ``.tflite`` file's bytes; ``ExportError`` if it is not a TFLite model, is
        truncated or corrupt, or has no metadata or labels file."""
        if len(model) < 8 or not flatbuffers.util.BufferHasIdentifier(model, 0, b"TFL3"):
            raise ExportError("The file is not a TFLite model (no TFL3 identifier).")
        try:
            return cls._read(model)
        except (struct.error, IndexError, ValueError, UnicodeDecodeError) as error:
            raise ExportError(f"The TFLite model is truncated or corrupt ({error}).") from error

    @classmethod
    def _read(cls, model: bytes) -> TFLiteMetadata:
        flatbuffer = schema_fb.Model.GetRootAs(model, 0)
        metadata = None
        for index in range(flatbuffer.MetadataLength()):
            entry = flatbuffer.Metadata(index)
            if _name(entry.Name()) == METADATA_FIELD_NAME:
                metadata = flatbuffer.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
        if not metadata or not flatbuffers.util.BufferHasIdentifier(metadata, 0, METADATA_FILE_IDENTIFIER):
            raise ExportError("The TFLite model has no Model Metadata (TFLITE_METADATA buffer with M001).")
        root = _root_table(metadata)
        subgraph = _vector_tables(root, _MODEL_METADATA_FIELDS["subgraph_metadata"])[0]
        (input_tensor,) = _vector_tables(subgraph, _SUBGRAPH_FIELDS["input_tensor_metadata"])
        (output_tensor,) = _vector_tables(subgraph, _SUBGRAPH_FIELDS["output_tensor_metadata"])
        content = _subtable(input_tensor, _TENSOR_FIELDS["content"])
        if content is None or _scalar(content, _CONTENT_FIELDS["content_properties_type"], "uint8") != (
            _AUDIO_PROPERTIES
        ):
            raise ExportError("The input tensor metadata of the TFLite model has no AudioProperties.")
        audio = _subtable(content, _CONTENT_FIELDS["content_properties"])
        label_files = [
            _string(file, _ASSOCIATED_FILE_FIELDS["name"])
            for file in _vector_tables(output_tensor, _TENSOR_FIELDS["associated_files"])
            if _scalar(file, _ASSOCIATED_FILE_FIELDS["type"], "int8") == _TENSOR_AXIS_LABELS
        ]
        if not label_files:
            raise ExportError(
                "The output tensor metadata of the TFLite model has no TENSOR_AXIS_LABELS file."
            )
        try:
            with zipfile.ZipFile(io.BytesIO(model)) as files:
                text = files.read(label_files[0]).decode("utf-8")
        except (zipfile.BadZipFile, KeyError) as error:
            raise ExportError(
                f"The labels file {label_files[0]!r} is not packed in the TFLite model."
            ) from error
        return cls(
            labels=tuple(line for line in text.splitlines() if line),
            sample_rate=_scalar(audio, _AUDIO_FIELDS["sample_rate"], "uint32"),
            channels=_scalar(audio, _AUDIO_FIELDS["channels"], "uint32"),
            name=_string(root, _MODEL_METADATA_FIELDS["name"]),
            description=_string(root, _MODEL_METADATA_FIELDS["description"]),
        )


def _check_one_input_one_output(model: schema_fb.ModelT) -> None:
    subgraph = model.subgraphs[0]
    if len(subgraph.inputs) != 1 or len(subgraph.outputs) != 1:
        raise ExportError(
            "Metadata describes one waveform input and one score output; the model has "
            f"{len(subgraph.inputs)} inputs and {len(subgraph.outputs)} outputs."
        )


def _name(value: bytes | str | None) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else (value or "")


# Writing: a table is a set of (slot -> offset) and (slot -> scalar) fields; vectors hold table offsets.


def _table(
    builder: flatbuffers.Builder,
    num_fields: int,
    *,
    offsets: dict[int, int] | None = None,
    scalars: dict[int, tuple[str, int]] | None = None,
) -> int:
    builder.StartObject(num_fields)
    for slot, offset in (offsets or {}).items():
        builder.PrependUOffsetTRelativeSlot(slot, offset, 0)
    for slot, (kind, value) in (scalars or {}).items():
        getattr(builder, f"Prepend{kind.capitalize()}Slot")(slot, value, 0)
    return builder.EndObject()


def _offset_vector(builder: flatbuffers.Builder, offsets: Sequence[int]) -> int:
    builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return builder.EndVector()


def _associated_file(builder: flatbuffers.Builder, *, name: str, description: str) -> int:
    name_offset, description_offset = builder.CreateString(name), builder.CreateString(description)
    return _table(
        builder,
        _NUM_FIELDS["associated_file"],
        offsets={
            _ASSOCIATED_FILE_FIELDS["name"]: name_offset,
            _ASSOCIATED_FILE_FIELDS["description"]: description_offset,
        },
        scalars={_ASSOCIATED_FILE_FIELDS["type"]: ("int8", _TENSOR_AXIS_LABELS)},
    )


def _audio_content(builder: flatbuffers.Builder, *, sample_rate: int, channels: int) -> int:
    audio = _table(
        builder,
        _NUM_FIELDS["audio"],
        scalars={
            _AUDIO_FIELDS["sample_rate"]: ("uint32", sample_rate),
            _AUDIO_FIELDS["channels"]: ("uint32", channels),
        },
    )
    return _content(builder, _AUDIO_PROPERTIES, audio)


def _feature_content(builder: flatbuffers.Builder) -> int:
    return _content(builder, _FEATURE_PROPERTIES, _table(builder, 0))


def _content(builder: flatbuffers.Builder, properties_type: int, properties: int) -> int:
    return _table(
        builder,
        _NUM_FIELDS["content"],
        offsets={_CONTENT_FIELDS["content_properties"]: properties},
        scalars={_CONTENT_FIELDS["content_properties_type"]: ("uint8", properties_type)},
    )


def _tensor_metadata(
    builder: flatbuffers.Builder,
    *,
    name: str,
    description: str,
    content: int,
    associated_files: Sequence[int] = (),
) -> int:
    offsets = {
        _TENSOR_FIELDS["name"]: builder.CreateString(name),
        _TENSOR_FIELDS["description"]: builder.CreateString(description),
        _TENSOR_FIELDS["content"]: content,
    }
    if associated_files:
        offsets[_TENSOR_FIELDS["associated_files"]] = _offset_vector(builder, associated_files)
    return _table(builder, _NUM_FIELDS["tensor"], offsets=offsets)


# Reading: field slot n sits at vtable offset 4 + 2n.


def _field(table: Table, slot: int) -> int:
    return table.Offset(4 + 2 * slot)


def _root_table(buffer: bytes) -> Table:
    data = bytearray(buffer)
    return Table(data, flatbuffers.encode.Get(number_types.UOffsetTFlags.packer_type, data, 0))


def _subtable(table: Table, slot: int) -> Table | None:
    offset = _field(table, slot)
    return Table(table.Bytes, table.Indirect(table.Pos + offset)) if offset else None


def _vector_tables(table: Table, slot: int) -> list[Table]:
    offset = _field(table, slot)
    if not offset:
        return []
    start = table.Vector(offset)
    return [Table(table.Bytes, table.Indirect(start + 4 * index)) for index in range(table.VectorLen(offset))]


def _string(table: Table, slot: int) -> str:
    offset = _field(table, slot)
    return table.String(table.Pos + offset).decode("utf-8") if offset else ""


def _scalar(table: Table, slot: int, kind: str) -> int:
    offset = _field(table, slot)
    flags = getattr(number_types, f"{kind.capitalize()}Flags")
    return int(table.Get(flags, table.Pos + offset)) if offset else 0
