"""Entry point of the ``audio-transfer`` command.

Each verb lives in its own module of this package with two functions:

- ``add_parser(subparsers) -> argparse.ArgumentParser`` declares its arguments (every verb gets ``--json``);
- ``run(args) -> CommandResult`` does the work and returns what to print.

``main`` prints the result as text, or as exactly one JSON object on stdout with ``--json``, and sends logs
and progress to stderr. Exit codes: 0 success; 1 the answer is no (``verify`` rejected a clip, ``detect``
found no keyword); 2 a usage, configuration or data error (argparse's errors,
:class:`~audio_transfer.errors.AudioTransferError`, ``OSError``: one line naming what to fix); 3 an
internal failure (any other exception: one line, the traceback with ``--verbose``); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Sequence

from audio_transfer.cli._native_logs import quiet_tensorflow_startup
from audio_transfer.cli._progress_line import ProgressLine
from audio_transfer.cli.output import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CommandResult,
    terminal_safe,
)
from audio_transfer.errors import AudioTransferError
from audio_transfer.progress import progress_hook
from audio_transfer.version import __version__

# Verb -> module in audio_transfer.cli. Modules are imported lazily so `--version` stays fast.
COMMANDS: dict[str, str] = {
    "info": "audio_transfer.cli.info",
    "bases": "audio_transfer.cli.bases",
    "train": "audio_transfer.cli.train",
    "evaluate": "audio_transfer.cli.evaluate",
    "predict": "audio_transfer.cli.predict",
    "enroll": "audio_transfer.cli.enroll",
    "verify": "audio_transfer.cli.verify",
    "export": "audio_transfer.cli.export",
    "detect": "audio_transfer.cli.detect",
    "evaluate-stream": "audio_transfer.cli.evaluate_stream",
    "synth": "audio_transfer.cli.synth",
    "demo": "audio_transfer.cli.demo",
}

logger = logging.getLogger("audio_transfer")
# Draws audio_transfer.progress on stderr; log lines clear it first.
_progress_line = ProgressLine()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="audio-transfer",
        description="Speech and audio transfer learning: pretrained bases, small heads, edge export.",
    )
    parser.add_argument("--version", action="version", version=f"audio-transfer {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more log output on stderr (-vv for debug), TensorFlow's own start-up lines and tracebacks",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for verb, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = module.add_parser(subparsers)
        sub.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        sub.set_defaults(_run=module.run, command=verb)
    return parser


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at emit time (pytest's capture swaps it between tests)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass

    def format(self, record: logging.LogRecord) -> str:
        # Messages quote file names and labels: no control character of theirs reaches the terminal.
        return terminal_safe(super().format(record), keep_newlines=True)

    def emit(self, record: logging.LogRecord) -> None:
        _progress_line.clear()
        super().emit(record)


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    package_logger = logging.getLogger("audio_transfer")
    if not any(isinstance(handler, _StderrHandler) for handler in package_logger.handlers):
        package_logger.addHandler(_StderrHandler())
    package_logger.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    quiet_tensorflow_startup(verbose=_verbose_before_command(argv))
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    _configure_logging(args.verbose)
    try:
        with progress_hook(_progress_line):
            result: CommandResult = args._run(args)
    except KeyboardInterrupt:
        logger.error("Interrupted.")
        return EXIT_INTERRUPTED
    except (AudioTransferError, OSError) as error:
        logger.error("%s", error)
        return _failed(args, error, EXIT_USAGE)
    except Exception as error:
        logger.error(
            "Internal error, %s: %s%s",
            type(error).__name__,
            error,
            "" if args.verbose else " (run with --verbose for the traceback)",
            exc_info=error if args.verbose else None,
        )
        return _failed(args, error, EXIT_INTERNAL)
    if args.json:
        print(json.dumps(result.data, indent=2, sort_keys=False, default=str))
    else:
        print(terminal_safe(result.text, keep_newlines=True))
    return result.exit_code


def _failed(args: argparse.Namespace, error: Exception, exit_code: int) -> int:
    if args.json:
        print(json.dumps({"error": type(error).__name__, "message": str(error)}))
    return exit_code


def _verbose_before_command(argv: Sequence[str]) -> bool:
    """Whether -v/--verbose comes before the verb (read before parsing, which imports the verbs)."""
    for token in argv:
        if token == "--verbose" or (token.startswith("-v") and set(token[1:]) == {"v"}):
            return True
        if not token.startswith("-"):
            return False
    return False


if __name__ == "__main__":
    raise SystemExit(main())
