import os
import subprocess
import sys

import audio_transfer
from audio_transfer.cli.main import main


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
