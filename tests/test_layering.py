"""The package's import rules, read from the source with ``ast`` (nothing is imported):

- data flows one way: a package imports only packages of a lower layer (``LAYERS``), so there is no
  upward import and no cycle between packages;
- no package imports another package's private (``_x``) module.

The top-level modules (``errors``, ``atomic_files``, ``checks``, ...) are the lowest layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import audio_transfer

PACKAGE = Path(audio_transfer.__file__).parent

# Lower number, lower layer; a package may import only packages with a smaller number.
LAYERS = {
    "audio": 1,
    "data": 2,
    "features": 3,
    "synth": 3,
    "bases": 4,
    "heads": 5,
    "tasks": 6,
    "evaluation": 7,
    "embedding": 7,
    "training": 8,
    "export": 9,
    "streaming": 10,
    "cli": 11,
}
TOP_LEVEL = 0
ENTRY_POINTS = {"__main__.py"}  # `python -m audio_transfer` runs the CLI


def _layer_of(parts: tuple[str, ...]) -> tuple[str, int]:
    """The package a module (path parts below ``audio_transfer``) belongs to, and its layer."""
    if len(parts) == 1:
        return "(top level)", TOP_LEVEL
    return parts[0], LAYERS[parts[0]]


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, dotted name)`` of every absolute audio_transfer import, including ``from pkg import _x``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name.startswith("audio_transfer.")]


def import_violations(root: Path) -> list[str]:
    """Upward imports and imports of another package's private module under ``root``, one line each."""
    violations = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if parts[-1] in ENTRY_POINTS and len(parts) == 1:
            continue
        package, layer = _layer_of(parts)
        for line, name in _imported_modules(ast.parse(path.read_text(encoding="utf-8"))):
            target = name.split(".")[1:]
            if not target or target[0] == package:
                continue
            where = f"{path.relative_to(root.parent)}:{line} imports {target[0]}"
            if target[0] in LAYERS:
                if LAYERS[target[0]] >= layer:
                    violations.append(f"{where}, which is not below {package}")
                private = [index for index, part in enumerate(target) if part.startswith("_")]
                if private:
                    module = ".".join(target[: private[0] + 1])
                    violations.append(f"{where}: {module} is a private module of {target[0]}")
    return list(dict.fromkeys(violations))


def test_no_upward_import_and_no_private_module_of_another_package():
    assert import_violations(PACKAGE) == []


def test_every_package_has_a_layer():
    packages = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert packages == set(LAYERS)


@pytest.mark.parametrize(
    ("module", "source", "problem"),
    [
        ("streaming/x.py", "from audio_transfer.export._serving import to_pcm16\n", "private module"),
        ("cli/x.py", "from audio_transfer.data import _discovery\n", "private module"),
        ("cli/x.py", "import audio_transfer.export._serving\n", "private module"),
        ("bases/x.py", "def f():\n    from audio_transfer.tasks import Task\n", "not below"),
        ("audio/x.py", "from audio_transfer.data import load_labelled_audio\n", "not below"),
        ("evaluation/x.py", "from audio_transfer.training import Trainer\n", "not below"),
        ("errors.py", "from audio_transfer.audio import load_audio\n", "not below"),
    ],
)
def test_checker_finds_each_kind_of_violation(tmp_path, module, source, problem):
    root = tmp_path / "audio_transfer"
    for package in LAYERS:
        (root / package).mkdir(parents=True)
    (root / module).write_text(source)
    (root / "data" / "y.py").write_text("from audio_transfer.data._discovery import discover\n")
    [violation] = import_violations(root)
    assert problem in violation and module in violation
