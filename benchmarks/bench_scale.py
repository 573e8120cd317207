"""Peak memory of `audio-transfer train` as the dataset grows (issue 18, part 1), from a folder and from a
feature store, side by side.

Makes folders of 2,000, 8,000 and 32,000 one-second clips in a temporary folder: hard links (copies where
links fail) of the shared Speech Commands subset under new names, its 41 speakers renamed per copy so that
the speaker-disjoint validation hold-out works, with its `_background_noise_` folder. For each size it runs,
each in its own process under `/usr/bin/time -v`:

- `audio-transfer train DATA --task kws --out RUN --epochs N --cache-dir CACHE` (source "folder"): the
  in-process embedder writes the clips, their two augmented copies and the validation clips into a feature
  store under CACHE, then the head trains from it;
- `audio-transfer train STORE --task kws --out RUN --epochs N` on that store (source "store").

It prints one table: clips, source, peak RSS, wall time, the RSS ratio to the smallest size's, and per source
the projection to 105,000 clips by a least-squares line through the sizes, with PASS/FAIL against the targets
(32k ≤ 1.2× 2k; 105k ≤ 4 GB). Run from the repository root (15-25 min on two cores)::

    PYTHONPATH=. nice python benchmarks/bench_scale.py [--epochs 3] [--sizes 2000 8000 32000]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = (
    Path(os.environ.get("AUDIO_TRANSFER_DATA", REPO_ROOT.parent / "shared" / "data"))
    / "speech_commands_subset"
)
PROJECTED_CLIPS = 105_000
MAX_RATIO = 1.2
MAX_PROJECTED_MB = 4096
NOISE = "_background_noise_"


def make_folder(source: Path, out: Path, clips: int) -> Path:
    """``clips`` linked copies of ``source``'s clips under ``out``, speakers renamed per round of copies."""
    files = sorted(path for path in source.glob("*/*.wav") if path.parent.name != NOISE)
    speakers = sorted({path.name.split("_")[0] for path in files})
    shutil.copytree(source / NOISE, out / NOISE, copy_function=_link)
    for index in range(clips):
        original = files[index % len(files)]
        speaker = speakers.index(original.name.split("_")[0]) + len(speakers) * (index // len(files))
        target = out / original.parent.name / f"{speaker:08x}_nohash_{index}.wav"
        target.parent.mkdir(parents=True, exist_ok=True)
        _link(original, target)
    return out


def _link(source, target) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def measured(command: list[str]) -> tuple[float, float]:
    """Peak RSS (MB) and wall time (s) of ``command`` run under `/usr/bin/time -v`."""
    started = time.monotonic()
    result = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True)
    wall = time.monotonic() - started
    if result.returncode:
        sys.exit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
    return peak_kb / 1024, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 8000, 32000])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--data", type=Path, default=SHARED, help="Speech Commands subset")
    args = parser.parse_args()
    cli = [sys.executable, "-m", "audio_transfer"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as temporary:
        root = Path(temporary)
        for size in args.sizes:
            data = make_folder(args.data, root / f"data{size}", size)
            train = ["train", "--task", "kws", "--epochs", str(args.epochs), "--json"]
            cache = root / f"cache{size}"
            folder = measured(
                [
                    *cli,
                    train[0],
                    str(data),
                    *train[1:],
                    "--out",
                    str(root / f"run{size}"),
                    "--cache-dir",
                    str(cache),
                ]
            )
            rows.append((size, "folder", *folder))
            (store,) = (cache / "stores").iterdir()
            from_store = measured(
                [*cli, train[0], str(store), *train[1:], "--out", str(root / f"srun{size}")]
            )
            rows.append((size, "store", *from_store))
            shutil.rmtree(data)
            shutil.rmtree(cache)
            print(f"{size} clips done: {rows[-2:]}", file=sys.stderr, flush=True)
    print_table(rows, args.sizes)


def print_table(rows: list[tuple[int, str, float, float]], sizes: list[int]) -> None:
    smallest = min(sizes)
    print("| clips | source | peak RSS MB | wall s | RSS vs smallest |")
    print("|---|---|---|---|---|")
    for size, source, rss, wall in rows:
        base = next(r for s, src, r, _ in rows if s == smallest and src == source)
        print(f"| {size:,} | {source} | {rss:,.0f} | {wall:,.0f} | {rss / base:.2f}x |")
    print()
    for source in ("folder", "store"):
        points = [(size, rss) for size, src, rss, _ in rows if src == source]
        slope, intercept = np.polyfit([p[0] for p in points], [p[1] for p in points], 1)
        projected = intercept + slope * PROJECTED_CLIPS
        ratio = points[-1][1] / points[0][1]
        verdict = "PASS" if ratio <= MAX_RATIO and projected <= MAX_PROJECTED_MB else "FAIL"
        print(
            f"{source}: {points[-1][0]:,} clips at {ratio:.2f}x the {points[0][0]:,}-clip peak (target <= "
            f"{MAX_RATIO}x), {slope * 1000:.2f} MB per 1,000 clips, {projected:,.0f} MB projected at "
            f"{PROJECTED_CLIPS:,} clips (target <= {MAX_PROJECTED_MB:,} MB): {verdict}"
        )


if __name__ == "__main__":
    main()
