"""``audio-transfer bases``: list the pretrained bases and what they are for."""

from __future__ import annotations

import argparse

from audio_transfer.cli.output import CommandResult


def add_parser(subparsers) -> argparse.ArgumentParser:
    return subparsers.add_parser(
        "bases",
        help="list pretrained bases",
        description=(
            "List the preset bases for `load_base`: rate, embedding size, window, parameters, licence, "
            "tasks. Other bases: 'hub:<handle>', a .keras file or SavedModel directory."
        ),
    )


def _format_count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _format_seconds(window: float | None, hop: float | None) -> str:
    return "-" if window is None or hop is None else f"{window:g}/{hop:g} s"


def run(args: argparse.Namespace) -> CommandResult:
    from audio_transfer.bases import list_bases

    infos = list_bases()
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
    return CommandResult(data={"bases": [info.to_dict() for info in infos]}, text="\n".join(lines))
