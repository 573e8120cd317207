"""The head families a classifier is built with, by name (``TrainConfig.head``, ``--set head=...``).

Plain data, importable without TensorFlow (the training settings check it):

- ``"mlp"``: :class:`~audio_transfer.heads.ClassificationHead` (pooling, optional hidden layer, softmax),
  trained in epochs of mini-batches with early stopping;
- ``"linear"``: :class:`~audio_transfer.heads.LinearHead` (pooling, standardization, one softmax layer),
  fitted to convergence on the whole training set at once: the logistic-regression linear probe.
"""

HEAD_FAMILIES = ("mlp", "linear")

# The pooling of a linear head when none is named: mean and max over time, the linear probe's.
LINEAR_DEFAULT_POOLING = "mean_max"
