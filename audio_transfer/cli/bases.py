"""``audio-transfer bases``: list the pretrained bases and what they are for."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from audio_transfer.cli.output import CommandResult

if TYPE_CHECKING:  # importing audio_transfer.bases loads TensorFlow; parsers must stay fast
    from audio_transfer.bases import BaseInfo


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "bases",
        help="list pretrained bases",
        description=(
            "List the preset bases for `load_base`: rate, embedding size, window, parameters, licence, "
            "tasks. Other bases: 'hub:<handle>', a .keras file or SavedModel directory."
        ),
    )
    parser.add_argument(
        "--markdown", action="store_true", help="print the table in Markdown (the README's table of bases)"
    )
    return parser


def _format_count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _format_seconds(window: float | None, hop: float | None) -> str:
    return "-" if window is None or hop is None else f"{window:g}/{hop:g} s"


def _format_size(info: BaseInfo) -> str:
    parts = []
    if info.parameter_count is not None:
        parts.append(f"{info.parameter_count / 1e6:.2f} M weights")
    if info.file_size_bytes is not None:
        parts.append(f"{info.file_size_bytes / 1e6:.1f} MB")
    return ", ".join(parts) or "-"


def markdown_table(infos: Sequence[BaseInfo]) -> str:
    """The bases as a Markdown table: name, kind, source, licence, dims, window/hop, size, tasks."""
    header = ("base", "kind", "source", "licence", "dims", "window/hop", "size", "tasks")
    rows = [
        (
            f"`{info.name}`",
            info.kind,
            info.source,
            info.licence,
            str(info.embedding_dim),
            _format_seconds(info.window_seconds, info.hop_seconds),
            _format_size(info),
            ", ".join(info.tasks),
        )
        for info in infos
    ]
    lines = [header, tuple("---" for _ in header), *rows]
    return "\n".join("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in lines)


def run(args: argparse.Namespace) -> CommandResult:
    from audio_transfer.bases import list_bases

    infos = list_bases()
    data = {"bases": [info.to_dict() for info in infos]}
    if args.markdown:
        return CommandResult(data=data, text=markdown_table(infos))
    header = ("name", "kind", "rate", "dim", "window/hop", "parameters", "licence", "tasks")
    rows = [
        (
            info.name,
            info.kind,
            str(info.sample_rate),
            str(info.embedding_dim),
            _format_seconds(info.window_seconds, info.hop_seconds),
            _format_count(info.parameter_count),
            info.licence.split(" ")[0],
            ", ".join(info.tasks),
        )
        for info in infos
    ]
    table = [header, *rows]
    widths = [max(len(row[column]) for row in table) for column in range(len(header) - 1)]
    lines = [
        "  ".join([*(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)), row[-1]])
        for row in table
    ]
    lines.append("Hub bases need their TF Hub model (network, a TFHUB_CACHE_DIR copy or 'hub:<directory>').")
    return CommandResult(data=data, text="\n".join(lines))
