"""What :func:`audio_transfer.bases.list_bases` says about each pretrained base."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class BaseInfo:
    """Description of one preset base.

    Args:
        name: preset name for :func:`~audio_transfer.bases.load_base`.
        kind: ``"hub"`` (TensorFlow graph loaded from a TF Hub handle) or ``"keras"`` (Keras layers with
            weights shipped in the package).
        description: one paragraph for people.
        source: where the model and its weights come from.
        licence: licence of the weights.
        sample_rate: input rate in Hz.
        embedding_dim: size of each embedding.
        window_seconds: span of audio behind one embedding, in seconds (None when not declared).
        hop_seconds: time between embeddings, in seconds (None when not declared).
        parameter_count: number of weights (None when not measured).
        file_size_bytes: size of the weights file (None when not measured).
        tasks: what the base is meant for.
        citation: paper to cite.
        handle: the TF Hub handle of hub bases, else None.
        class_path: ``"module:Class"`` that builds the base.
    """

    name: str
    kind: str
    description: str
    source: str
    licence: str
    sample_rate: int
    embedding_dim: int
    window_seconds: float | None
    hop_seconds: float | None
    parameter_count: int | None
    file_size_bytes: int | None
    tasks: tuple[str, ...]
    citation: str
    handle: str | None
    class_path: str

    def to_dict(self) -> dict:
        """JSON-ready dict of the fields."""
        data = dataclasses.asdict(self)
        data["tasks"] = list(self.tasks)
        return data
