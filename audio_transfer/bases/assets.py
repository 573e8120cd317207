"""Where the converted pretrained weights shipped with the package live.

``models/<base>/`` in the repository is their canonical home; a wheel carries a copy in
``audio_transfer/pretrained/<base>/`` (see ``setup.py``). Both are searched, the packaged copy first.
"""

from __future__ import annotations

from pathlib import Path

from audio_transfer.errors import BaseNotFoundError

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def asset_search_dirs(base: str) -> list[Path]:
    """Folders searched, in order, for the assets of pretrained base ``base``."""
    return [_PACKAGE_ROOT / "pretrained" / base, _PACKAGE_ROOT.parent / "models" / base]


def pretrained_asset(base: str, filename: str) -> Path:
    """Path of the shipped file ``filename`` of pretrained base ``base``.

    Raises:
        BaseNotFoundError: the file is in none of :func:`asset_search_dirs`.
    """
    searched = asset_search_dirs(base)
    for folder in searched:
        candidate = folder / filename
        if candidate.is_file():
            return candidate
    raise BaseNotFoundError(
        f"The weights file {filename!r} of base {base!r} is missing; looked in "
        f"{', '.join(str(p) for p in searched)}. Reinstall audio_transfer, or rebuild it with the "
        f"conversion script in models/{base}/."
    )
