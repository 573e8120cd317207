"""Where the converted pretrained weights shipped with the package live.

They are package data in ``audio_transfer/pretrained/<base>/`` (listed in ``pyproject.toml``'s
``[tool.setuptools.package-data]``), so a wheel and a source checkout find them at the same place. The
conversion scripts and model cards that produce and describe them stay in the repository's ``models/<base>/``.
"""

from __future__ import annotations

from pathlib import Path

from audio_transfer.errors import BaseNotFoundError

PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"


def pretrained_asset(base: str, filename: str) -> Path:
    """Path of the shipped file ``filename`` of pretrained base ``base``.

    Raises:
        BaseNotFoundError: ``audio_transfer/pretrained/<base>/<filename>`` does not exist.
    """
    candidate = PRETRAINED_DIR / base / filename
    if candidate.is_file():
        return candidate
    raise BaseNotFoundError(
        f"The weights file {filename!r} of base {base!r} is missing; looked in {candidate}. Reinstall "
        f"audio_transfer, or rebuild the file with the conversion script in the repository's models/{base}/."
    )
