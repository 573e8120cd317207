import fnmatch
import os
import subprocess
import sys

import pytest
from conftest import REPO_ROOT

import audio_transfer
from audio_transfer.bases.assets import pretrained_asset
from audio_transfer.bases.presets import PRESETS
from audio_transfer.cli.main import main
from audio_transfer.errors import BaseNotFoundError


def test_version_flag(capsys):
    try:
        main(["--version"])
    except SystemExit as exit_:
        assert exit_.code == 0
    assert audio_transfer.__version__ in capsys.readouterr().out


def test_console_script_prints_version():
    out = subprocess.run(
        [sys.executable, "-m", "audio_transfer", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"audio-transfer {audio_transfer.__version__}"


def test_other_backend_is_refused_with_a_reason():
    env = dict(os.environ, KERAS_BACKEND="jax")
    out = subprocess.run(
        [sys.executable, "-c", "import audio_transfer"], capture_output=True, text=True, env=env
    )
    assert out.returncode != 0
    assert "needs Keras's TensorFlow backend" in out.stderr
    assert "KERAS_BACKEND='jax'" in out.stderr


def _package_data_globs() -> list[str]:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    return pyproject["tool"]["setuptools"]["package-data"]["audio_transfer"]


def test_pyproject_is_the_only_build_file():
    assert not (REPO_ROOT / "setup.py").exists()
    assert not (REPO_ROOT / "setup.cfg").exists()


def test_wheel_package_data_holds_every_pretrained_file():
    """A non-editable install has no repository beside it: every shipped weights file must be package data."""
    package = REPO_ROOT / "audio_transfer"
    shipped = {p.relative_to(package).as_posix() for p in (package / "pretrained").rglob("*") if p.is_file()}
    shipped = {name for name in shipped if "__pycache__" not in name}
    globs = _package_data_globs()
    assert shipped, "audio_transfer/pretrained/ holds no files"
    unpackaged = sorted(name for name in shipped if not any(fnmatch.fnmatch(name, g) for g in globs))
    assert not unpackaged, f"not matched by [tool.setuptools.package-data] {globs}: {unpackaged}"
    for name, preset in PRESETS.items():
        if isinstance(preset["weights"], str):
            assert f"pretrained/{name}/{preset['weights']}" in shipped, name
            assert pretrained_asset(name, preset["weights"]).is_file()


def test_missing_pretrained_file_names_the_path_and_the_conversion_script():
    with pytest.raises(BaseNotFoundError, match=r"pretrained/speech_embedding/absent\.weights\.h5.*models/"):
        pretrained_asset("speech_embedding", "absent.weights.h5")


# Imports every module of the package with the test-only and benchmark-only libraries made unimportable.
_IMPORT_WITHOUT_EXTRAS = """
import importlib, pkgutil, sys
EXTRAS = {"librosa", "numba", "llvmlite", "scipy", "sklearn", "pytest", "hypothesis"}
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in EXTRAS:
            raise ImportError(f"{name} is only in an extra")
sys.meta_path.insert(0, Refuse())
import audio_transfer
for module in pkgutil.walk_packages(audio_transfer.__path__, "audio_transfer."):
    if module.name != "audio_transfer.__main__":
        importlib.import_module(module.name)
"""


def test_the_package_imports_without_the_dev_and_bench_extras():
    """librosa (and what it pulls in) is the tests' reference, not a dependency: no module may import it."""
    out = subprocess.run([sys.executable, "-c", _IMPORT_WITHOUT_EXTRAS], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
