"""A model's bytes and its constants as C/C++ source and header, for firmware (TensorFlow Lite Micro)."""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from audio_transfer.atomic_files import check_writable, write_text
from audio_transfer.checks import is_int
from audio_transfer.errors import ConfigError, ExportOutputError

SOURCE_SUFFIX = ".cc"
HEADER_SUFFIX = ".h"
# TensorFlow Lite Micro reads the flatbuffer in place: its tensors' buffers need this alignment.
ALIGNMENT_BYTES = 16
_BYTES_PER_LINE = 12
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

CValue = int | float | str | Sequence[str]


@dataclasses.dataclass(frozen=True)
class CSourceExport:
    """What :func:`export_c_source` wrote.

    Args:
        source_path: the ``.cc`` file (the definitions).
        header_path: the ``.h`` file (the ``extern`` declarations, C and C++).
        prefix: the prefix of every symbol (``<prefix>_data``, ``<prefix>_data_len``, the constants).
        size_bytes: length of the model array.
    """

    source_path: Path
    header_path: Path
    prefix: str
    size_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "source_path": str(self.source_path),
            "header_path": str(self.header_path),
            "prefix": self.prefix,
            "size_bytes": self.size_bytes,
        }


def c_source_paths(out: str | os.PathLike) -> tuple[Path, Path]:
    """The source and header :func:`export_c_source` writes for ``out`` (``NAME`` or ``NAME.cc``)."""
    out = Path(out)
    stem = out.with_suffix("") if out.suffix == SOURCE_SUFFIX else out
    return stem.with_name(stem.name + SOURCE_SUFFIX), stem.with_name(stem.name + HEADER_SUFFIX)


def export_c_source(
    content: bytes,
    *,
    out: str | os.PathLike,
    constants: Mapping[str, CValue],
    comment: str = "",
    defines: Mapping[str, int] | None = None,
) -> CSourceExport:
    """Write ``content`` (e.g. a ``.tflite`` file's bytes) and ``constants`` as ``NAME.cc`` and ``NAME.h``.

    The header has include guards, ``extern "C"`` linkage and an ``extern`` declaration of each symbol;
    the source includes it and defines them: ``<prefix>_data``, the bytes as a
    ``const unsigned char`` array aligned to 16 bytes (``alignas(16)``, as TensorFlow Lite Micro needs),
    ``<prefix>_data_len`` (``unsigned int``), and ``<prefix>_<key>`` per constant: ``const int`` for
    integers, ``const float`` for floats, ``const char* const`` for strings, and for a sequence of strings a
    ``const char* const`` array with ``<prefix>_<key>_count`` (``const int``). ``<prefix>`` is ``NAME``
    with every character that C does not allow in a name replaced by ``_``. Both files are written
    atomically; they compile as C++ and the header also as C.

    Args:
        content: the bytes to embed.
        out: ``NAME`` or ``NAME.cc``; ``NAME.cc`` and ``NAME.h`` are written.
        constants: name (a C identifier) -> value.
        comment: text for the header's opening comment (what the model is, how to drive it).
        defines: name (a C identifier) -> integer, written as macros.

    Raises:
        ConfigError: ``content`` is empty, a constant's name is no C identifier or repeats another
            symbol, or its value is no int, finite float, string or sequence of strings.
        ExportOutputError: the files cannot be written.

    Example:
        >>> export_c_source(Path("kws.tflite").read_bytes(), out="firmware/kws_model",
        ...                 constants={"sample_rate": 16000, "labels": ["_silence_", "yes"]})
    """
    if not content:
        raise ConfigError("There are no bytes to write as C source: the model is empty.")
    source_path, header_path = c_source_paths(out)
    for path in (source_path, header_path):
        check_writable(path, directory=False, error=ExportOutputError)
    prefix = re.sub(r"\W", "_", source_path.name[: -len(SOURCE_SUFFIX)], flags=re.ASCII)
    if not _IDENTIFIER.fullmatch(prefix):
        prefix = f"model_{prefix}"
    declarations, definitions = _symbols(prefix, content, constants)
    macros = []
    for key, value in (defines or {}).items():
        if not (isinstance(key, str) and _IDENTIFIER.fullmatch(key)) or not is_int(value):
            raise ConfigError(f"A C #define takes an identifier and an int, received {key!r}: {value!r}.")
        macros.append(f"#define {prefix.upper()}_{key.upper()} {value}")
    guard = f"{prefix.upper()}_H_"
    header = "\n".join(
        [
            _comment(comment or f"{prefix}: a model and its constants."),
            f"#ifndef {guard}",
            f"#define {guard}",
            "",
            *([*macros, ""] if macros else []),
            "#ifdef __cplusplus",
            'extern "C" {',
            "#endif",
            "",
            *declarations,
            "",
            "#ifdef __cplusplus",
            "}",
            "#endif",
            "",
            f"#endif  // {guard}",
            "",
        ]
    )
    source = "\n".join([f'#include "{header_path.name}"', "", *definitions, ""])
    write_text(header_path, header, error=ExportOutputError)
    write_text(source_path, source, error=ExportOutputError)
    return CSourceExport(
        source_path=source_path, header_path=header_path, prefix=prefix, size_bytes=len(content)
    )


def _symbols(prefix: str, content: bytes, constants: Mapping[str, CValue]) -> tuple[list[str], list[str]]:
    """The header's declarations and the source's definitions, in the same order."""
    lines = [
        ", ".join(f"0x{byte:02x}" for byte in content[i : i + _BYTES_PER_LINE])
        for i in range(0, len(content), _BYTES_PER_LINE)
    ]
    declarations = [
        f"extern const unsigned char {prefix}_data[];",
        f"extern const unsigned int {prefix}_data_len;",
    ]
    definitions = [
        f"alignas({ALIGNMENT_BYTES}) const unsigned char {prefix}_data[] = {{",
        *(f"    {line}," for line in lines),
        "};",
        f"const unsigned int {prefix}_data_len = {len(content)};",
    ]
    names = {f"{prefix}_data", f"{prefix}_data_len"}
    for key, value in constants.items():
        if not (isinstance(key, str) and _IDENTIFIER.fullmatch(key)):
            raise ConfigError(f"A C constant's name must be a C identifier, received {key!r}.")
        name = f"{prefix}_{key}"
        if {name, f"{name}_count"} & names:
            raise ConfigError(f"The C constant {key!r} would repeat a name already written ({name}).")
        names |= {name, f"{name}_count"}
        if isinstance(value, bool):
            raise ConfigError(f"The C constant {key!r} is a bool; pass an int (0 or 1).")
        if isinstance(value, int):
            declarations.append(f"extern const int {name};")
            definitions.append(f"const int {name} = {value};")
        elif isinstance(value, float) and math.isfinite(value):
            declarations.append(f"extern const float {name};")
            definitions.append(f"const float {name} = {value!r}f;")
        elif isinstance(value, str):
            declarations.append(f"extern const char* const {name};")
            definitions.append(f"const char* const {name} = {_c_string(value)};")
        elif isinstance(value, Sequence) and all(isinstance(item, str) for item in value):
            declarations += [f"extern const char* const {name}[];", f"extern const int {name}_count;"]
            definitions += [
                f"const char* const {name}[] = {{{', '.join(_c_string(item) for item in value)}}};",
                f"const int {name}_count = {len(value)};",
            ]
        else:
            raise ConfigError(
                f"The C constant {key!r} must be an int, a finite float, a string or a sequence of "
                f"strings, received {value!r}."
            )
    return declarations, definitions


def _c_string(text: str) -> str:
    """``text`` as a C string literal (UTF-8, every byte outside printable ASCII escaped in octal)."""
    escaped = "".join(
        chr(byte) if 32 <= byte < 127 and chr(byte) not in '"\\?' else f"\\{byte:03o}"
        for byte in text.encode("utf-8")
    )
    return f'"{escaped}"'


def _comment(text: str) -> str:
    return "\n".join(f"// {line}".rstrip() for line in text.splitlines()) + "\n"
