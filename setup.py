"""Build hook: ship the converted pretrained weights of ``models/`` inside the wheel.

``models/<base>/`` is the canonical home of each pretrained base (conversion script, weights, model card).
A non-editable install has no repository beside it, so ``build_py`` copies each base's weights and card into
``audio_transfer/pretrained/<base>/``; ``audio_transfer.bases.assets`` looks there first and in ``models/``
second (editable installs and source checkouts).
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ASSET_PATTERNS = ("*.weights.h5", "*.npz", "*.json", "MODEL_CARD.md", "*.txt", "*.csv")


class BuildPyWithPretrained(build_py):
    def run(self) -> None:
        super().run()
        models = Path(__file__).parent / "models"
        target_root = Path(self.build_lib) / "audio_transfer" / "pretrained"
        for base_dir in sorted(p for p in models.iterdir() if p.is_dir()):
            for pattern in ASSET_PATTERNS:
                for source in base_dir.glob(pattern):
                    target = target_root / base_dir.name / source.name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, target)


setup(cmdclass={"build_py": BuildPyWithPretrained})
