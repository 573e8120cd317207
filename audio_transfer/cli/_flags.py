"""Arguments several verbs share (no TensorFlow imported here: parsers are built for every command)."""

from __future__ import annotations

import argparse


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
