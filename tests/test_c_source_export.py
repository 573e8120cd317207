"""C source and header of a model (`export --streaming --format c`): they compile, link from C, and hold the
.tflite bytes and the streaming description."""

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from streaming_support import CLIP_SECONDS, save_run
from tiny_streaming_base import HOP_SAMPLES, tiny_spotter

from audio_transfer.cli.main import main
from audio_transfer.errors import ConfigError
from audio_transfer.export.c_source_export import CSourceExport, c_source_paths, export_c_source

CONSTANTS = {
    "sample_rate": 16000,
    "threshold": 0.75,
    "name": 'say "hi"\\ ü',
    "labels": ["_silence_", "yes", "no"],
}
CXX = shutil.which("g++") or shutil.which("gcc")
CC = shutil.which("gcc")
needs_compiler = pytest.mark.skipif(CXX is None or CC is None, reason="no C/C++ compiler (g++ or gcc)")

# Reads the symbols from C: alignment, length, a checksum of the bytes, the constants.
_PROGRAM = r"""
#include <stdint.h>
#include <stdio.h>
#include "{header}"

int main(void) {{
  unsigned long sum = 0;
  for (unsigned int i = 0; i < {p}_data_len; ++i) sum = (sum * 31 + {p}_data[i]) % 1000000007UL;
  printf("%d %u %lu %d\n", (int)((uintptr_t){p}_data % 16), {p}_data_len, sum, {p}_labels_count);
  printf("%s|%s\n", {p}_labels[1], {p}_labels[{p}_labels_count - 1]);
  {extra}
  return 0;
}}
"""


def _checksum(content: bytes) -> int:
    total = 0
    for byte in content:
        total = (total * 31 + byte) % 1000000007
    return total


def _array_bytes(source: str, prefix: str) -> bytes:
    """The bytes of ``<prefix>_data`` parsed back from the generated source."""
    body = re.search(rf"const unsigned char {prefix}_data\[\] = \{{(.*?)\}};", source, re.S).group(1)
    return bytes(int(value, 16) for value in re.findall(r"0x([0-9a-f]{2})", body))


def _compile_and_run(tmp_path, written, *, extra: str = "") -> list[str]:
    """Compile the source as C++ and a C program including the header, link them, run the program."""
    flags = ["-Wall", "-Werror"]
    cxx = [CXX, *(["-x", "c++"] if CXX.endswith("gcc") else []), "-std=c++11", *flags, "-c"]
    subprocess.run([*cxx, str(written.source_path), "-o", str(tmp_path / "model.o")], check=True)
    program = tmp_path / "main.c"
    program.write_text(
        _PROGRAM.format(header=written.header_path.name, p=written.prefix, extra=extra), encoding="utf-8"
    )
    include = f"-I{written.header_path.parent}"
    subprocess.run([CC, *flags, include, "-c", str(program), "-o", str(tmp_path / "main.o")], check=True)
    binary = tmp_path / "main"
    subprocess.run([CC, str(tmp_path / "main.o"), str(tmp_path / "model.o"), "-o", str(binary)], check=True)
    return subprocess.run([str(binary)], check=True, capture_output=True, text=True).stdout.splitlines()


@needs_compiler
def test_source_and_header_compile_and_hold_the_bytes_and_constants(tmp_path):
    content = bytes(np.random.default_rng(0).integers(0, 256, 1001, dtype=np.uint8))
    written = export_c_source(content, out=tmp_path / "my-model.v2", constants=CONSTANTS, comment="A test.")
    assert (written.source_path.name, written.header_path.name) == ("my-model.v2.cc", "my-model.v2.h")
    assert written.prefix == "my_model_v2" and written.size_bytes == 1001
    source, header = written.source_path.read_text(), written.header_path.read_text()
    assert _array_bytes(source, written.prefix) == content
    assert "alignas(16) const unsigned char my_model_v2_data[]" in source
    assert "#ifndef MY_MODEL_V2_H_" in header and "extern const float my_model_v2_threshold;" in header
    extra = 'printf("%d %.2f %s\\n", my_model_v2_sample_rate, my_model_v2_threshold, my_model_v2_name);'
    lines = _compile_and_run(tmp_path, written, extra=extra)
    assert lines == [f"0 1001 {_checksum(content)} 3", "yes|no", '16000 0.75 say "hi"\\ ü']


def test_out_names_and_bad_constants(tmp_path):
    assert c_source_paths(tmp_path / "kws.cc") == (tmp_path / "kws.cc", tmp_path / "kws.h")
    assert c_source_paths(tmp_path / "kws") == (tmp_path / "kws.cc", tmp_path / "kws.h")
    assert export_c_source(b"\x01", out=tmp_path / "1st", constants={}).prefix == "model_1st"
    for constants, message in [
        ({"bad name": 1}, "C identifier, received 'bad name'"),
        ({"data_len": 1}, "repeat a name already written"),
        ({"flag": True}, "is a bool"),
        ({"gain": float("nan")}, "finite float"),
        ({"sizes": [1, 2]}, "sequence of strings"),
    ]:
        with pytest.raises(ConfigError, match=message):
            export_c_source(b"\x01", out=tmp_path / "bad", constants=constants)
    for defines in ({"bad name": 1}, {"size": 1.5}):
        with pytest.raises(ConfigError, match="#define"):
            export_c_source(b"\x01", out=tmp_path / "bad", constants={}, defines=defines)
    with pytest.raises(ConfigError, match="empty"):
        export_c_source(b"", out=tmp_path / "bad", constants={})
    assert not (tmp_path / "bad.cc").exists() and not (tmp_path / "bad.h").exists()


@needs_compiler
def test_cli_streaming_export_as_c(tmp_path, capsys):
    run_dir = save_run(tiny_spotter(), tmp_path / "run")
    out = tmp_path / "kws_model"
    code = main(["export", str(run_dir), "--format", "c", "--streaming", "--out", str(out), "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    tflite = tmp_path / "kws_model.tflite"
    assert data["path"] == str(tflite) and data["c_source"]["header_path"] == str(tmp_path / "kws_model.h")
    content = tflite.read_bytes()
    source_path, header_path = tmp_path / "kws_model.cc", tmp_path / "kws_model.h"
    source = source_path.read_text()
    assert _array_bytes(source, "kws_model") == content
    assert (tmp_path / "kws_model.tflite.streaming.json").is_file()
    header = header_path.read_text()
    for name in ("hop_samples", "state_size", "warmup_hops", "smoothing_hops", "refractory_hops"):
        assert f"extern const int kws_model_{name};" in header
    extra = (
        'printf("%d %d %d %d %.2f %.2f %d\\n", kws_model_hop_samples, kws_model_state_size, '
        "kws_model_warmup_hops, kws_model_sample_rate, kws_model_threshold, kws_model_refractory_seconds, "
        "kws_model_smoothing_hops);"
    )
    written = CSourceExport(**{**data["c_source"], "source_path": source_path, "header_path": header_path})
    lines = _compile_and_run(tmp_path, written, extra=extra)
    assert lines[:2] == [f"0 {len(content)} {_checksum(content)} 3", "rise|fall"]
    # Default settings: threshold 0.5, 0.24 s smoothing (12 hops of 20 ms), refractory the 1.2 s window.
    assert lines[2] == f"{HOP_SAMPLES} {data['state_size']} {data['warmup_hops']} 16000 0.50 1.20 12"
    assert data["window_samples"] == round((CLIP_SECONDS + 0.2) * 16000)


def test_format_c_needs_streaming(tmp_path, capsys):
    code = main(["export", str(tmp_path), "--format", "c", "--out", str(tmp_path / "x"), "--json"])
    assert code == 2 and "add --streaming" in json.loads(capsys.readouterr().out)["message"]
    assert list(tmp_path.iterdir()) == []
