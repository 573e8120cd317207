"""Bring a wrapped model's embeddings to the base contract's ``(batch, windows, embedding_dim)``.

Hub modules and user models return embeddings in several layouts: one vector per clip ``(batch, dim)``,
a sequence ``(batch, frames, dim)``, or a sequence with a singleton axis ``(batch, frames, 1, dim)``
(TF Hub's speech_embedding). :func:`as_frame_embeddings` maps all of them to ``(batch, frames, dim)`` and
checks that ``dim`` is the embedding size the base declared.
"""

from __future__ import annotations

import tensorflow as tf

from audio_transfer.errors import ConfigError, InputShapeError


def as_frame_embeddings(
    outputs: tf.Tensor, *, embedding_dim: int, source: str, batched: bool = True
) -> tf.Tensor:
    """Reshape model outputs to frame embeddings and check their size.

    Args:
        outputs: embeddings of one batch (``batched=True``): ``(batch, dim)``, ``(batch, frames, dim)`` or
            ``(batch, frames, 1, dim)``; or of one clip (``batched=False``): ``(dim,)``, ``(frames, dim)`` or
            ``(frames, 1, dim)``.
        embedding_dim: the size the base declared for each embedding.
        source: what produced ``outputs`` (a handle or model name), for error messages.
        batched: whether ``outputs`` has a leading batch axis.

    Returns:
        ``(batch, frames, embedding_dim)`` float32, or ``(frames, embedding_dim)`` when ``batched=False``.

    Raises:
        ConfigError: the last axis is known and differs from ``embedding_dim``.
        InputShapeError: the outputs have a layout other than the ones above.

    Example:
        >>> as_frame_embeddings(tf.zeros([2, 96]), embedding_dim=96, source="demo").shape
        TensorShape([2, 1, 96])
    """
    outputs = tf.convert_to_tensor(outputs)
    if not batched:
        outputs = outputs[tf.newaxis]
    rank = outputs.shape.rank
    if rank == 2:
        outputs = outputs[:, tf.newaxis, :]
    elif rank == 4 and outputs.shape[2] == 1:
        outputs = tf.squeeze(outputs, axis=2)
    elif rank is None:
        outputs = tf.reshape(outputs, [tf.shape(outputs)[0], -1, embedding_dim])
    elif rank != 3:
        unbatched_shape = tuple(outputs.shape) if batched else tuple(outputs.shape[1:])
        raise InputShapeError(
            f"{source} returned embeddings of shape {unbatched_shape}; a base needs (batch, dim), "
            f"(batch, frames, dim) or (batch, frames, 1, dim). Choose another output of the model."
        )
    found = outputs.shape[-1]
    if found is not None and found != embedding_dim:
        raise ConfigError(
            f"{source} returns embeddings of size {found}, but embedding_dim={embedding_dim} was declared. "
            f"Pass embedding_dim={found}, or select the output that has {embedding_dim} values."
        )
    outputs = tf.ensure_shape(tf.cast(outputs, tf.float32), [None, None, embedding_dim])
    return outputs if batched else outputs[0]
