"""Which ``tf.distribute`` strategy a training run uses, read from its settings and ``TF_CONFIG``."""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from audio_transfer.errors import ConfigError
from audio_transfer.training.train_config import STRATEGY_NAMES

logger = logging.getLogger(__name__)

# The jobs of a TF_CONFIG cluster that train (MultiWorkerMirroredStrategy's); "chief" is worker 0 when given.
_TRAINING_JOBS = ("chief", "worker")

_EXAMPLE = (
    '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}} '
    "(index 1 on the second machine)"
)


def cluster_config(environ: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """The validated ``TF_CONFIG`` of ``environ`` (``os.environ`` by default); ``None`` when it is unset or
    empty.

    ``TF_CONFIG`` is the JSON that ``tf.distribute.MultiWorkerMirroredStrategy`` reads:
    ``{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": i}}`` (a ``"chief"``
    job of one address may come first; it is then the chief, else worker 0 is).

    Raises:
        ConfigError: bad JSON, a missing or malformed ``cluster`` or ``task``, a job other than ``chief``
            and ``worker``, a task index out of range, or an address without a port; the message names the
            key and gives an example.

    Example:
        >>> tf_config = '{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}'
        >>> cluster_config({"TF_CONFIG": tf_config})["task"]
        {'type': 'worker', 'index': 1}
    """
    text = (os.environ if environ is None else environ).get("TF_CONFIG", "").strip()
    if not text:
        return None
    try:
        config = json.loads(text)
    except ValueError as error:
        raise ConfigError(f"TF_CONFIG is not valid JSON ({error}); set it to {_EXAMPLE}.") from None
    if not isinstance(config, dict):
        raise ConfigError(f"TF_CONFIG must be a JSON object, received {text!r}; set it to {_EXAMPLE}.")
    cluster = config.get("cluster")
    if not isinstance(cluster, dict) or not cluster:
        raise ConfigError(
            f"TF_CONFIG has no 'cluster' (a mapping of job name to its list of host:port addresses); set it "
            f"to {_EXAMPLE}."
        )
    for job, addresses in cluster.items():
        if job not in _TRAINING_JOBS:
            raise ConfigError(
                f"TF_CONFIG's cluster has a job {job!r}: training runs jobs {' and '.join(_TRAINING_JOBS)} "
                "only (no parameter servers or evaluators); remove it."
            )
        if not isinstance(addresses, list) or not addresses:
            raise ConfigError(
                f"TF_CONFIG's cluster['{job}'] must be a non-empty list of host:port addresses, received "
                f"{addresses!r}."
            )
        for address in addresses:
            host, _, port = str(address).rpartition(":")
            if not isinstance(address, str) or not host or not port.isdigit():
                raise ConfigError(
                    f"TF_CONFIG's cluster['{job}'] address {address!r} has no port: write each as host:port "
                    "(e.g. 10.0.0.2:12345), a port every machine of the cluster can reach."
                )
    if len(cluster.get("chief", [])) > 1:
        raise ConfigError("TF_CONFIG's cluster['chief'] must hold one address; list the others as 'worker'.")
    task = config.get("task")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise ConfigError(
            "TF_CONFIG has no 'task' with 'type' and 'index' (which of the cluster's addresses this process "
            f"is); set it to {_EXAMPLE}."
        )
    job, index = task["type"], task["index"]
    if job not in cluster:
        raise ConfigError(
            f"TF_CONFIG's task type {job!r} is not a job of its cluster ({', '.join(cluster)}); give one of "
            "them."
        )
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(cluster[job]):
        raise ConfigError(
            f"TF_CONFIG's task index {index!r} is out of range: cluster['{job}'] has {len(cluster[job])} "
            f"address(es), so the index must be 0 to {len(cluster[job]) - 1} (this machine's place in it)."
        )
    return config


def num_workers(environ: Mapping[str, str] | None = None) -> int:
    """The training processes ``TF_CONFIG`` declares (chief and workers); 1 without ``TF_CONFIG``."""
    config = cluster_config(environ)
    return 1 if config is None else sum(len(config["cluster"].get(job, [])) for job in _TRAINING_JOBS)


def strategy_name(name: str, *, environ: Mapping[str, str] | None = None, num_gpus: int | None = None) -> str:
    """The strategy ``name`` stands for: ``"auto"`` is ``"multi-worker"`` when ``TF_CONFIG`` declares
    several training processes, else ``"mirrored"`` with several visible GPUs, else ``"one-device"``.

    Args:
        name: one of :data:`STRATEGY_NAMES`.
        environ: the environment to read ``TF_CONFIG`` from (``os.environ`` by default).
        num_gpus: visible GPUs (``None`` asks TensorFlow).

    Raises:
        ConfigError: an unknown name, or a malformed ``TF_CONFIG`` (see :func:`cluster_config`).

    Example:
        >>> strategy_name("auto", environ={}, num_gpus=0)
        'one-device'
    """
    if name not in STRATEGY_NAMES:
        raise ConfigError(f"strategy must be one of {', '.join(STRATEGY_NAMES)}; received {name!r}.")
    workers = num_workers(environ)
    if name == "multi-worker" and cluster_config(environ) is None:
        raise ConfigError(
            "--strategy multi-worker reads the cluster from TF_CONFIG, which is not set; set it to "
            f"{_EXAMPLE}."
        )
    if name != "auto":
        return name
    if workers > 1:
        return "multi-worker"
    if num_gpus is None:
        num_gpus = len(tf.config.list_physical_devices("GPU"))
    return "mirrored" if num_gpus > 1 else "one-device"


@functools.cache
def distribution_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy of a run (one per process: create it before any other TensorFlow
    work, as MultiWorkerMirroredStrategy requires).

    ``"one-device"``: the default strategy (the first GPU, else the CPU); ``"mirrored"``:
    ``tf.distribute.MirroredStrategy`` over the local GPUs; ``"multi-worker"``:
    ``tf.distribute.MultiWorkerMirroredStrategy`` over the processes of ``TF_CONFIG``, synchronous, each
    with its local devices. ``"auto"`` chooses (see :func:`strategy_name`).

    Raises:
        ConfigError: see :func:`strategy_name`.

    Example:
        >>> with distribution_strategy("one-device").scope():  # doctest: +SKIP
        ...     model = build_model()
    """
    resolved = strategy_name(name)
    if resolved == "multi-worker":
        config = cluster_config()
        logger.info(
            "Training on %d processes (this one is %s %d of TF_CONFIG).",
            num_workers(),
            config["task"]["type"],
            config["task"]["index"],
        )
        return tf.distribute.MultiWorkerMirroredStrategy()
    if resolved == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def is_chief(name: str = "auto", *, environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process writes the run's files: always, unless strategy ``name`` is (or ``"auto"``
    chooses) ``"multi-worker"``; then only the ``"chief"`` of ``TF_CONFIG``, or worker 0 of a cluster
    without one.

    Example:
        >>> is_chief("auto", environ={})
        True
    """
    if strategy_name(name, environ=environ, num_gpus=0) != "multi-worker":
        return True
    config = cluster_config(environ)
    task = config["task"]
    if "chief" in config["cluster"]:
        return task["type"] == "chief"
    return task["index"] == 0
