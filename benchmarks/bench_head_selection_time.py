"""Training time of ``head: auto`` (cross-validated head selection) beside each fixed head, on 1,500 clips.

The clips are real words: every clip of a Speech Commands-layout folder written ``--copies`` times at
other gains (each copy keeps its speaker), up to ``--clips`` files. Each setting trains through
:func:`audio_transfer.training.train_run` (what ``audio-transfer train`` runs, speaker hold-out included,
no disk cache), in one process, ``mlp`` first so that every run finds the base loaded and traced. Wall and
process CPU seconds are printed (on a shared machine wall time also measures the other processes), with
each run's ratio to today's default (``mlp``) and the selection's own seconds. The issue's budget: auto
at most 2x. Run from the repository root::

    PYTHONPATH=. nice python benchmarks/bench_head_selection_time.py \\
        $AUDIO_TRANSFER_DATA/speech_commands_subset
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from audio_transfer.audio import load_audio, save_audio
from audio_transfer.data import load_labelled_audio
from audio_transfer.training import TrainConfig, train_run

SAMPLE_RATE = 16000


def _write_copies(data_dir: Path, out: Path, *, copies: int, clips: int) -> int:
    """Each clip of ``data_dir`` at ``copies`` gains from 1 down to 0.5, as
    ``out/<word>/<speaker>_nohash_<n>.wav``."""
    written = 0
    for index, example in enumerate(load_labelled_audio(data_dir).examples):
        waveform = load_audio(example.path, sample_rate=SAMPLE_RATE)
        for copy, gain in enumerate(np.linspace(1.0, 0.5, copies)):
            if written == clips:
                return written
            path = out / example.label / f"{example.speaker}_nohash_{index}{copy}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            save_audio(path, (gain * waveform).astype(np.float32), sample_rate=SAMPLE_RATE)
            written += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="a Speech Commands-layout folder")
    parser.add_argument("--copies", type=int, default=5)
    parser.add_argument("--clips", type=int, default=1500)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="bench_head_selection_time_") as folder:
        written = _write_copies(args.data_dir, Path(folder), copies=args.copies, clips=args.clips)
        print(
            f"{written} clips; {'head':<8} {'wall s':>7} {'cpu s':>7} {'x mlp':>6} {'selection s':>11}  chose"
        )
        reference = None
        for head in ("mlp", "linear", "auto"):
            wall, cpu = time.perf_counter(), time.process_time()
            run = train_run(TrainConfig(task="kws", data_dir=folder, head=head), verbose=0)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            reference = reference or (wall, cpu)
            selection = "" if run.selection is None else f"{run.selection.seconds:11.1f}"
            chose = f"{run.config.head}/{run.config.pooling}/{'augmented' if run.config.augment else 'clean'}"
            print(
                f"{'':<{len(str(written)) + 7}} {head:<8} {wall:7.1f} {cpu:7.1f} "
                f"{wall / reference[0]:6.2f} {selection:>11}  {chose}",
                flush=True,
            )


if __name__ == "__main__":
    main()
