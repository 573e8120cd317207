"""Entry point of the ``audio-transfer`` command.

Each verb lives in its own module of this package with two functions:

- ``add_parser(subparsers) -> argparse.ArgumentParser`` declares its arguments (every verb gets ``--json``);
- ``run(args) -> CommandResult`` does the work and returns what to print.

``main`` prints the result as text, or as exactly one JSON object on stdout with ``--json``, and sends logs
and progress to stderr. Exit codes: 0 success; 1 the answer is no (``verify`` rejected a clip, ``detect``
found no keyword); 2 a usage, configuration or data error (argparse's errors,
:class:`~audio_transfer.errors.AudioTransferError`, ``OSError``: one line naming what to fix); 3 an
internal failure (any other exception: one line, the traceback with ``--verbose``); 130 interrupted (Ctrl-C:
one line saying whether the verb's output, ``--out`` or ``--enrollments``, was left untouched).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

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
    "embed": "audio_transfer.cli.embed",
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
    try:
        return _main(argv)
    except KeyboardInterrupt:  # before a verb started (while parsing or importing): nothing was written
        _progress_line.clear()
        print("Interrupted; nothing written.", file=sys.stderr)
        return EXIT_INTERRUPTED


def _main(argv: Sequence[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    quiet_tensorflow_startup(verbose=_verbose_before_command(argv))
    parser = build_parser()
    args = _parse(parser, argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    _configure_logging(args.verbose)
    outputs = {path: _state(path) for path in _output_paths(args)}
    try:
        with progress_hook(_progress_line):
            result: CommandResult = args._run(args)
    except KeyboardInterrupt:
        logger.error("%s", _interrupted(outputs))
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


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv``; what follows a ``--`` goes to ``args.pass_through`` for the verbs that declare it
    (``embed`` hands it to Apache Beam), and is an error for the others."""
    args, extra = parser.parse_known_args(argv)
    if extra and extra[0] == "--" and hasattr(args, "pass_through"):
        args.pass_through = extra[1:]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _failed(args: argparse.Namespace, error: Exception, exit_code: int) -> int:
    if args.json:
        print(json.dumps({"error": type(error).__name__, "message": str(error)}))
    return exit_code


def _output_paths(args: argparse.Namespace) -> list[Path | str]:
    """What the verb writes: ``--out`` and, for enroll, ``--enrollments`` (a URL as given: ``embed --out
    gs://bucket/store``)."""
    from audio_transfer.atomic_files import is_url  # numpy: not at the CLI's start

    values = (getattr(args, name, None) for name in ("out", "enrollments"))
    return [os.fspath(value) if is_url(value) else Path(value) for value in values if value is not None]


def _state(path: Path | str) -> object:
    """Enough of ``path``'s state to tell whether it changed: its type, size and times, and a folder's
    entries with theirs (``None`` when it does not exist, or is a folder with nothing in it: verbs create
    their output folder before the work, which writes nothing yet). A URL's is not looked up (a bucket
    listing): a fresh object, so an interrupted verb always says it may have written there."""
    if isinstance(path, str):
        return object()
    try:
        status = path.stat()
        entries = (
            sorted((entry.name, entry.stat(follow_symlinks=False).st_mtime_ns) for entry in os.scandir(path))
            if path.is_dir()
            else None
        )
    except OSError:
        return None
    if entries == []:
        return None
    return status.st_mode, status.st_size, status.st_mtime_ns, entries


def _interrupted(outputs: dict[Path | str, object]) -> str:
    """The line Ctrl-C prints: nothing written, or which output the verb may have left half-written."""
    changed = [path for path, before in outputs.items() if _state(path) != before]
    if changed:
        return (
            f"Interrupted while writing {', '.join(map(terminal_safe, changed))}: it may hold a partial "
            "result; run the command again to replace it."
        )
    resumable = [path for path in outputs if isinstance(path, Path) and _has_checkpoint(path)]
    if resumable:
        return (
            f"Interrupted; nothing written to {', '.join(map(terminal_safe, outputs))}. The training so far "
            "is kept: run the same command with --resume to continue it."
        )
    if outputs:
        return f"Interrupted; nothing written to {', '.join(map(terminal_safe, outputs))}."
    return "Interrupted; nothing written."


def _has_checkpoint(path: Path) -> bool:
    """Whether an interrupted training left its checkpoints beside the run folder ``path``."""
    from audio_transfer.training.run_folder import CHECKPOINT_DIR

    return any(path.parent.glob(f".{path.name}.*.tmp/{CHECKPOINT_DIR}"))


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
