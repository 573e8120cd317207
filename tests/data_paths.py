"""Where the real data the tests and fixture generators use lives: the one place that reads the variable.

``AUDIO_TRANSFER_DATA`` names the data folder (default ``../shared/data`` relative to the repository root). It
holds ``speech_commands_subset/`` (Speech Commands clips, one folder per word); Google Coral's int8
YAMNet lies in ``models/yamnet_coral_int8/`` beside it. Tests that need either are skipped when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("AUDIO_TRANSFER_DATA", REPO_ROOT.parent / "shared" / "data"))
SPEECH_COMMANDS_DIR = DATA_DIR / "speech_commands_subset"
CORAL_YAMNET_DIR = DATA_DIR.parent / "models" / "yamnet_coral_int8"
