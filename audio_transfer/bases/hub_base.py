"""TF Hub models and other TF2 SavedModels as Keras 3 bases.

``tensorflow_hub.KerasLayer`` is a Keras 2 layer and cannot be used inside Keras 3 models
(tensorflow/hub#903). :class:`HubBase` loads the SavedModel itself (``tf.saved_model.load`` on the folder
found by :func:`~audio_transfer.bases.hub_resolver.resolve_hub_handle`) and wraps it in a Keras 3 layer that
owns the module's ``tf.Variable`` objects as Keras variables, as ``keras.layers.TFSMLayer`` does: the Keras
variable is a view of the module's variable, so an optimizer step on it changes what the module computes, and
``model.save`` stores its value. ``TFSMLayer`` itself is not used because it calls one endpoint with one input
and stores a file path; hub models need per-family calling conventions and are reloaded from their handle.

Calling conventions (``call_convention``), for a padded waveform ``(batch, samples)``:

- ``"batched"``: ``module(waveform)``; FRILL, Keras exports, TF Hub speech_embedding (TF1 Hub format, called
  through its ``default`` signature, returns ``(batch, frames, 1, 96)``).
- ``"unbatched"``: ``module(clip)`` for each clip of the batch (``tf.map_fn``); YAMNet (returns ``(scores,
  embeddings, log_mel)``, embeddings ``(frames, 1024)`` are ``output_key=1``) and VGGish (``(frames, 128)``).
- ``"samples_and_sample_rate"``: ``module(samples=waveform, sample_rate=<int32 sample_rate>)``; TRILL and
  TRILL-distilled return a dict, selected with ``output_key="embedding"`` (or ``"layer19"`` for TRILL).

``output_key`` picks the embeddings from what the module returns: an index into a tuple, a key of a dict, or
``None`` for a single tensor (or a dict/tuple with one entry). The embeddings are then brought to ``(batch,
frames, embedding_dim)`` by :func:`~audio_transfer.bases.frame_embeddings.as_frame_embeddings`.

Trainable variables: the module's ``trainable_variables`` attribute when it has one (the Reusable SavedModel
convention that ``hub.KerasLayer`` follows), else every variable the endpoint reads whose ``trainable`` flag
is set (what ``TFSMLayer`` does). TF1 Hub format models (``tfhub_module.pb``) lose their update ops and
training graph in TF2 and can only be used frozen, as with ``hub.KerasLayer``.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

import keras
import tensorflow as tf

from audio_transfer.bases._keras_compat import in_safe_mode, track_variable
from audio_transfer.bases.audio_base import AudioBase
from audio_transfer.bases.frame_embeddings import as_frame_embeddings
from audio_transfer.bases.hub_resolver import resolve_hub_handle
from audio_transfer.errors import BaseNotFoundError, ConfigError

logger = logging.getLogger(__name__)

CALL_CONVENTIONS = ("batched", "unbatched", "samples_and_sample_rate")


def _endpoint(module: Any, signature: str | None, *, tf1_hub_format: bool, source: str):
    """The function of ``module`` to call and whether it is a signature (keyword inputs only)."""
    if signature is None:
        if tf1_hub_format:
            signature = "default"
        elif callable(module):
            return module.__call__, False
        elif hasattr(module, "serve"):
            return module.serve, False
        else:
            signature = "serving_default"
    signatures = getattr(module, "signatures", {})
    if signature in signatures:
        return signatures[signature], True
    if hasattr(module, signature) and callable(getattr(module, signature)):
        return getattr(module, signature), False
    raise ConfigError(
        f"{source} has no endpoint {signature!r}. Its signatures are {sorted(signatures)}; pass one of them "
        f"as signature=..., or signature=None to call the model itself."
    )


def _module_variables(module: Any, endpoint: Any) -> tuple[list[tf.Variable], set[int]]:
    """All variables behind ``endpoint`` and the ids of those that fine-tuning should update."""
    concrete_functions = getattr(endpoint, "concrete_functions", None) or [endpoint]
    variables: dict[int, tf.Variable] = {}
    for source in [getattr(module, "variables", ()), *(fn.variables for fn in concrete_functions)]:
        for variable in source:
            variables.setdefault(id(variable), variable)
    declared = getattr(module, "trainable_variables", None)
    if declared is not None:
        for variable in declared:
            variables.setdefault(id(variable), variable)
        return list(variables.values()), {id(v) for v in declared}
    return list(variables.values()), {id(v) for v in variables.values() if v.trainable}


class _HubModuleLayer(keras.layers.Layer):
    """Keras 3 layer around a loaded SavedModel: tracks its variables and applies the calling convention.

    Built by :class:`HubBase` (its config reloads the module from the handle), so it is not serializable on
    its own. Input ``(batch, samples)`` float32; output ``(batch, frames, embedding_dim)``.
    """

    def __init__(
        self,
        module: Any,
        *,
        source: str,
        call_convention: str,
        output_key: int | str | None,
        signature: str | None,
        tf1_hub_format: bool,
        sample_rate: int,
        embedding_dim: int,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.supports_jit = False  # arbitrary TensorFlow graphs: XLA may not compile them
        self._module = module
        self.source = source
        self.call_convention = call_convention
        self.output_key = output_key
        self.tf1_hub_format = tf1_hub_format
        self.sample_rate = sample_rate
        self.embedding_dim = embedding_dim
        self._endpoint, self._is_signature = _endpoint(
            module, signature, tf1_hub_format=tf1_hub_format, source=source
        )
        if self._is_signature:
            self._input_names = sorted(self._endpoint.structured_input_signature[1])
            self._accepts_training = False
        else:
            parameters = inspect.signature(self._endpoint).parameters
            self._input_names = [name for name in parameters if name != "training"]
            self._accepts_training = "training" in parameters
        variables, trainable_ids = _module_variables(module, self._endpoint)
        for variable in variables:
            track_variable(
                self,
                keras.Variable(
                    initializer=variable,
                    trainable=id(variable) in trainable_ids,
                    dtype=variable.dtype,
                    shape=variable.shape,
                    name=variable.name.replace("/", "_").replace(":", "_"),
                ),
            )
        self.built = True

    def _invoke(self, waveform: tf.Tensor, training: bool):
        kwargs = {"training": training} if self._accepts_training else {}
        if self.call_convention == "samples_and_sample_rate":
            return self._endpoint(
                samples=waveform, sample_rate=tf.constant(self.sample_rate, tf.int32), **kwargs
            )
        if self._is_signature:
            if len(self._input_names) != 1:
                raise ConfigError(
                    f"Signature of {self.source} takes inputs {self._input_names}; the "
                    f"{self.call_convention!r} convention passes one waveform. Use "
                    f"call_convention='samples_and_sample_rate' or another signature."
                )
            return self._endpoint(**{self._input_names[0]: waveform})
        return self._endpoint(waveform, **kwargs)

    def _select(self, outputs):
        if isinstance(outputs, dict):
            keys = sorted(outputs)
        elif isinstance(outputs, (tuple, list)):
            keys = list(range(len(outputs)))
        else:
            keys = None
        selector = self.output_key
        if selector is None:
            if keys is None:
                return outputs
            if len(keys) == 1:
                return outputs[keys[0]]
        elif keys is not None and selector in keys:
            return outputs[selector]
        if keys is None:
            raise ConfigError(
                f"{self.source} returns a single tensor; output_key={selector!r} cannot select from it. Pass "
                f"output_key=None."
            )
        problem = "" if selector is None else f"; output_key={selector!r} is not one of them"
        raise ConfigError(
            f"{self.source} returns several outputs {keys}{problem}; pass output_key=<one of {keys}> to "
            f"choose the embeddings."
        )

    def call(self, waveform, training=False):
        training = bool(training) and self.trainable
        if self.call_convention == "unbatched":

            def embed_clip(clip):
                outputs = self._select(self._invoke(clip, training))
                return as_frame_embeddings(
                    outputs, embedding_dim=self.embedding_dim, source=self.source, batched=False
                )

            return tf.map_fn(
                tf.autograph.experimental.do_not_convert(embed_clip),  # errors surface unwrapped
                waveform,
                fn_output_signature=tf.TensorSpec([None, self.embedding_dim], tf.float32),
            )
        outputs = self._select(self._invoke(waveform, training))
        return as_frame_embeddings(outputs, embedding_dim=self.embedding_dim, source=self.source)


@keras.saving.register_keras_serializable(package="audio_transfer")
class HubBase(AudioBase):
    """A TF Hub model, a TF2 SavedModel folder or a TF1 Hub module as an :class:`AudioBase`.

    The handle is resolved (local folder, ``$TFHUB_CACHE_DIR`` layout, then ``tensorflow_hub`` when installed)
    and loaded with ``tf.saved_model.load`` when the base is built; ``get_config`` keeps the handle, so a task
    saved with ``model.save("task.keras")`` reloads the module from the handle and then its (possibly
    fine-tuned) variable values from the ``.keras`` file. Loading runs the SavedModel's graph: like
    ``keras.layers.TFSMLayer``, it is refused by ``keras.saving.load_model(..., safe_mode=True)``; pass
    ``safe_mode=False`` for files you trust.

    The whole module is one block: a hub base is either frozen or trainable as a whole.

    Args:
        handle: TF Hub / Kaggle URL or local SavedModel directory.
        sample_rate: rate in Hz the model expects.
        embedding_dim: size of the selected embeddings.
        min_samples: shortest input; shorter waveforms are zero-padded.
        window_seconds: span of audio behind one embedding, in seconds.
        hop_seconds: time between embeddings, in seconds.
        call_convention: ``"batched"``, ``"unbatched"`` or ``"samples_and_sample_rate"`` (module docstring).
        output_key: tuple index or dict key of the embeddings among the module's outputs; ``None`` for a
            single output.
        signature: name of the signature or function to call; ``None`` calls the module itself (``default``
            for TF1 Hub modules, ``serve``/``serving_default`` for models that are not callable).

    Shapes:
        input ``(batch, samples)`` float32 in [-1, 1]; output ``(batch, frames, embedding_dim)``.

    Example:
        >>> base = HubBase(handle="https://tfhub.dev/google/yamnet/1", sample_rate=16000,  # doctest: +SKIP
        ...     embedding_dim=1024, min_samples=15600, window_seconds=0.96, hop_seconds=0.48,
        ...     call_convention="unbatched", output_key=1)
        >>> base(tf.zeros([2, 16000])).shape  # doctest: +SKIP
        TensorShape([2, 1, 1024])
    """

    def __init__(
        self,
        *,
        handle: str,
        sample_rate: int,
        embedding_dim: int,
        min_samples: int,
        window_seconds: float,
        hop_seconds: float,
        call_convention: str = "batched",
        output_key: int | str | None = None,
        signature: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(
            sample_rate=sample_rate,
            embedding_dim=embedding_dim,
            min_samples=min_samples,
            window_seconds=window_seconds,
            hop_seconds=hop_seconds,
            **kwargs,
        )
        if call_convention not in CALL_CONVENTIONS:
            raise ConfigError(
                f"call_convention must be one of {list(CALL_CONVENTIONS)}, received {call_convention!r}."
            )
        if output_key is not None and not isinstance(output_key, (int, str)):
            raise ConfigError(f"output_key must be an index, a key or None, received {output_key!r}.")
        self.handle = str(handle)
        self.call_convention = call_convention
        self.output_key = output_key
        self.signature = signature
        path = resolve_hub_handle(self.handle)
        tf1_hub_format = (path / "tfhub_module.pb").is_file()
        try:
            module = tf.saved_model.load(str(path), tags=[] if tf1_hub_format else None)
        except Exception as error:  # corrupt or incompatible SavedModel: TensorFlow raises many types
            raise BaseNotFoundError(
                f"Cannot load the SavedModel of {self.handle!r} from {str(path)!r}: {type(error).__name__}: "
                f"{error}. Delete that folder and download the model again."
            ) from error
        self.module_layer = _HubModuleLayer(
            module,
            source=f"Hub model {self.handle!r}",
            call_convention=call_convention,
            output_key=output_key,
            signature=signature,
            tf1_hub_format=tf1_hub_format,
            sample_rate=sample_rate,
            embedding_dim=embedding_dim,
            name="module",
        )
        self.module_layer.trainable = self.trainable

    @property
    def blocks(self) -> list[keras.layers.Layer]:
        return [self.module_layer]

    def embed(self, waveform: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        return self.module_layer(waveform, training=training)

    def set_trainable(self, trainable: bool | int) -> None:
        """Freeze (``False``) or fine-tune (``True``) the whole module; a number of blocks is refused."""
        if not isinstance(trainable, bool):
            raise ConfigError(
                f"Hub bases are all-frozen or all-trainable: {self.handle!r} is one TensorFlow graph "
                f"without separate blocks, so trainable={trainable!r} cannot be honoured. Pass "
                f"trainable=False or True."
            )
        if trainable and self.module_layer.tf1_hub_format:
            raise ConfigError(
                f"{self.handle!r} is in the TF1 Hub format, whose training graph and update ops TensorFlow "
                f"2 cannot load: it can only be used frozen (trainable=False). Use a TF2 SavedModel to "
                f"fine-tune."
            )
        super().set_trainable(trainable)
        if trainable and not self.module_layer.trainable_weights:
            logger.warning("Hub model %r has no trainable variables: training leaves it as is.", self.handle)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            handle=self.handle,
            call_convention=self.call_convention,
            output_key=self.output_key,
            signature=self.signature,
        )
        return config

    @classmethod
    def from_config(cls, config: dict) -> HubBase:
        if in_safe_mode():
            raise ConfigError(
                f"This file contains the hub base {config.get('handle')!r}, whose SavedModel graph runs when "
                f"it is loaded, so keras.saving.load_model refuses it in safe mode. If you trust the file "
                f"and the model, load it with safe_mode=False (on the command line: --no-safe-mode)."
            )
        return cls(**config)
