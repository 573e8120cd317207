"""The head families a classifier is built with, by name (``TrainConfig.head``, ``--set head=...``).

Plain data, importable without TensorFlow (the training settings check it):

- ``"mlp"``: :class:`~audio_transfer.heads.ClassificationHead` (pooling, optional hidden layer, softmax),
  trained in epochs of mini-batches with early stopping;
- ``"linear"``: :class:`~audio_transfer.heads.LinearHead` (pooling, standardization, one softmax layer),
  fitted to convergence on the whole training set at once: the logistic-regression linear probe;
- ``"auto"`` (``TrainConfig.head``'s default, not a family of its own): training chooses one of the
  families above, their pooling and augmentation on or off by speaker-grouped cross-validation on the
  training clips (:func:`audio_transfer.training.select_head`). A classifier built from settings that
  still say ``"auto"`` (no data to choose with) gets :data:`AUTO_FALLBACK` (the linear probe's settings).
"""

HEAD_FAMILIES = ("mlp", "linear")

# What TrainConfig.head accepts: a family, or "auto" to choose one by cross-validation.
HEAD_CHOICES = ("auto", *HEAD_FAMILIES)

# The settings "auto" falls back to where cross-validation cannot choose (fewer than two training examples
# of a class in a fold): the linear probe exactly (linear head, mean+max pooling, no augmentation, no hidden
# layer), the baseline the task is measured against.
AUTO_FALLBACK = {"head": "linear", "pooling": "mean_max", "augment": False, "hidden_units": 0}

# The pooling of a linear head when none is named: mean and max over time, the linear probe's.
LINEAR_DEFAULT_POOLING = "mean_max"
