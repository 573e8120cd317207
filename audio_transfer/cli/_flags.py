"""Arguments several verbs share (no TensorFlow imported here: parsers are built for every command)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from audio_transfer.training import TrainConfig


def word_list(text: str) -> list[str]:
    """``--keywords yes,no`` → ``["yes", "no"]`` (an argparse type; empty items dropped, none is an error)."""
    words = [word.strip() for word in text.split(",") if word.strip()]
    if not words:
        raise argparse.ArgumentTypeError(f"expected comma-separated words, received {text!r}")
    return words


def path_or_url(text: str) -> Path | str:
    """An argparse type for a local path or a URL of a feature store (``gs://bucket/store``): a
    :class:`~pathlib.Path`, or the URL unchanged (``Path`` would fold its ``//``)."""
    from audio_transfer.atomic_files import is_url  # numpy: not at the CLI's start

    return text if is_url(text) else Path(text)


def resolved(path: Path | str) -> str:
    """``path`` absolute, as a string; a URL as it is."""
    return path if isinstance(path, str) else str(path.resolve())


def add_safe_mode_argument(parser: argparse.ArgumentParser) -> None:
    """``--no-safe-mode`` → ``args.safe_mode`` (True unless given), for verbs that load a saved model."""
    parser.add_argument(
        "--no-safe-mode",
        dest="safe_mode",
        action="store_false",
        help=(
            "load a model whose hub base runs its SavedModel graph when loaded (Keras refuses it in safe "
            "mode); only for files you trust, such as a run you trained"
        ),
    )


def add_failure_fraction_argument(parser: argparse.ArgumentParser, *, default_help: str) -> None:
    """``--max-failure-fraction F`` → ``args.max_failure_fraction`` (``None`` unless given), for the verbs
    that decode a dataset (the flag the decoding error's advice names)."""
    parser.add_argument(
        "--max-failure-fraction",
        type=float,
        default=None,
        metavar="F",
        help=f"stop when more than this share of the dataset's audio files fail to decode, in [0, 1]; 1 "
        f"skips every bad file ({default_help})",
    )


def add_set_argument(parser: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE`` (repeatable) → ``args.settings``, a list of ``(key, value)`` for a TrainConfig."""
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        type=_setting,
        default=[],
        metavar="KEY=VALUE",
        help=(
            "any training setting (a field of the YAML config, the value read as YAML), repeatable: "
            "--set fine_tune_blocks=1 --set max_failure_fraction=0.5 --set 'keywords=[up, down]'; "
            "applied over --config, under the explicit flags"
        ),
    )


def apply_settings(config: TrainConfig, settings: list[tuple[str, Any]]) -> TrainConfig:
    """``config`` with the ``--set`` values applied, validated as the YAML config is (ConfigError names
    the setting, or lists the known ones)."""
    if not settings:
        return config
    return type(config).from_dict({**config.to_dict(), **dict(settings)}, source="--set")


def _setting(text: str) -> tuple[str, Any]:
    key, equals, value = text.partition("=")
    if not equals or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, received {text!r}")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError as error:
        raise argparse.ArgumentTypeError(f"{text!r}: the value is not YAML ({error})") from None
