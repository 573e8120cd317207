"""Wake words trained as a user would, measured on people the model never heard: FRR at a false-accept rate.

For each wake word (a word of the shared Speech Commands subset) and each random draw, the subset's 41
speakers are split: 60% train, 40% test. Three models are trained with `train_run`'s defaults on the training
speakers' clips:

- ``wakeword``: ``task="wakeword"``, the word's real clips as positives (its other 29 words as ``_unknown_``,
  everyday speech synthesized by eSpeak NG (and near-miss phrases with ``--set synth_near_miss_clips=N``),
  the training half of the background-noise files as negative audio, one round of hard-negative mining);
- ``wakeword-synth``: the same, but the positives are 100 eSpeak NG clips of the word and no real one;
- ``kws``: ``task="kws"`` with ``keywords=[word]``, the keyword spotter a user would train before (every other
  clip ``_unknown_``).

Each is measured with :func:`~audio_transfer.streaming.evaluate_stream` (the streaming detector's scores,
stride 80 ms, default smoothing and refractory period) on held-out audio:

- positives: the test speakers' clips of the word, each 1 s into background taken from the negatives;
- **real negatives**: the test speakers' clips of the 29 other words joined with 0.3 s gaps, and the other
  half of the background-noise files (real recordings, never trained on, a few minutes);
- **synthesized negatives**: ``--test-synth-minutes`` of everyday sentences read by eSpeak NG with another
  seed than training's. Not independent of training: the sentences are the same list the training negatives
  read, in other voices and orders; they stand in for the hours of real speech this machine does not have.

FRR at X FA/h is read from the DET curve on the test audio: the lowest false-reject rate over the thresholds
0.01-0.999 whose false accepts per hour stay within X (the threshold is the test's best, so it is the curve's
reading, not a deployed threshold). Few minutes of real negatives cannot resolve 0.5 FA/h (one false accept
in 5 minutes is 12/h): the real-negative column says at which rates its audio resolves anything at all.
Means over words and draws, pooled over positives, with the number of positives. Run from the repository
root::

    PYTHONPATH=. python benchmarks/bench_wakeword.py [--words marvin,sheila,happy,house] [--draws 2]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import yaml

from audio_transfer.audio import load_audio, save_audio
from audio_transfer.data import load_labelled_audio
from audio_transfer.streaming import KeywordDetector, evaluate_stream
from audio_transfer.synth import SynthesizedNegatives, synthesize_keywords
from audio_transfer.training import TrainConfig, train_run

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech_commands_subset"
TARGETS = (0.5, 1.0)
MODELS = ("wakeword", "wakeword-synth", "kws")


def frr_at(report, target: float) -> float:
    """Lowest false-reject rate among the thresholds within ``target`` false accepts per hour."""
    within = report.false_accepts_per_hour <= target
    return float(report.false_reject_rate[within].min()) if within.any() else 1.0


def split_data(data, word: str, rng: np.random.Generator, root: Path) -> dict[str, object]:
    """Training folder (links), test positives folder and real negative audio for one draw."""
    speakers = sorted({example.speaker for example in data.examples})
    while True:
        test = set(rng.choice(speakers, size=round(0.4 * len(speakers)), replace=False))
        word_speakers = [example.speaker for example in data.examples if example.label == word]
        held_out = sum(speaker in test for speaker in word_speakers)
        if 2 <= held_out <= len(word_speakers) - 4:
            break
    train_dir, positives_dir = root / "train", root / "test_positives" / word
    other_clips = []
    for example in data.examples:
        if example.speaker in test:
            if example.label == word:
                (positives_dir).mkdir(parents=True, exist_ok=True)
                os.symlink(example.path, positives_dir / example.path.name)
            else:
                other_clips.append(example.path)
        else:
            target = train_dir / example.label / example.path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(example.path, target)
    noise = sorted(data.noise_files)
    (train_dir / "_background_noise_").mkdir(parents=True, exist_ok=True)
    for path in noise[0::2]:
        os.symlink(path, train_dir / "_background_noise_" / path.name)
    gap = np.zeros(4800, np.float32)
    speech = np.concatenate([part for path in sorted(other_clips) for part in (load_audio(path), gap)])
    real = [save_audio(root / "test_negatives" / "other_words.wav", speech, sample_rate=16000)]
    real += [Path(path) for path in noise[1::2]]
    return {"train": train_dir, "positives": positives_dir.parent, "real": real, "test_clips": held_out}


def synth_only(train_dir: Path, word: str, root: Path, seed: int) -> Path:
    """A copy of the training folder whose word folder holds 100 eSpeak NG clips instead of real ones."""
    folder = root / "train_synth"
    shutil.copytree(train_dir, folder, symlinks=True)
    shutil.rmtree(folder / word)
    noise = sorted((train_dir / "_background_noise_").iterdir())
    synthesize_keywords([word], out_dir=folder, per_word=100, seed=seed, noise_files=noise)
    (folder / "synth.json").unlink()
    return folder


def model_config(model: str, word: str, train_dir: Path, root: Path, *, seed: int) -> TrainConfig:
    """The settings of ``model`` (see the module docstring): ``train_run``'s defaults otherwise."""
    if model == "kws":
        return TrainConfig(task="kws", data_dir=str(train_dir), keywords=[word], seed=seed)
    if model == "wakeword-synth":
        train_dir = synth_only(train_dir, word, root, seed=seed)
    return TrainConfig(task="wakeword", data_dir=str(train_dir), keywords=[word], seed=seed)


def measure(run, positives: Path, negatives: list[Path]) -> dict[str, float]:
    detector = KeywordDetector(run.task, clip_seconds=run.config.clip_seconds)
    evaluation = evaluate_stream(detector, positives=positives, negatives=negatives)
    report = evaluation.report
    return {
        "hours": report.negative_seconds / 3600.0,
        "positives": len(report.detected),
        **{f"frr@{target:g}": frr_at(report, target) for target in TARGETS},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--words", default="marvin,sheila,happy,house")
    parser.add_argument("--draws", type=int, default=2)
    parser.add_argument("--test-synth-minutes", type=float, default=30.0)
    parser.add_argument("--models", default=",".join(MODELS), help=f"which of {', '.join(MODELS)}")
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a TrainConfig setting of the wake-word models (value read as YAML), e.g. synth_negatives=false",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    overrides = {
        key: yaml.safe_load(value) for key, _, value in (item.partition("=") for item in args.settings)
    }
    data = load_labelled_audio(args.data)
    rows = []
    for word in args.words.split(","):
        for draw in range(args.draws):
            with tempfile.TemporaryDirectory(prefix="bench_wakeword_") as folder:
                root = Path(folder)
                split = split_data(data, word, np.random.default_rng([draw, len(word)]), root)
                synthesized = SynthesizedNegatives.synthesize(
                    [word],
                    out_dir=root / "test_synth",
                    clip_seconds=1.0,
                    speech_minutes=args.test_synth_minutes,
                    clips_per_phrase=1,
                    seed=1000 + draw,
                )
                for model in args.models.split(","):
                    config = model_config(model, word, split["train"], root, seed=draw)
                    if model != "kws":
                        config = config.replace(**overrides)
                    run = train_run(config, verbose=0)
                    real = measure(run, split["positives"], split["real"])
                    both = measure(run, split["positives"], [*split["real"], *synthesized.speech_files])
                    rows.append({"word": word, "draw": draw, "model": model, "real": real, "both": both})
                    print(
                        f"{word:8s} draw {draw} {model:15s} test clips {real['positives']:2d}  "
                        f"real negatives {real['hours'] * 60:5.1f} min: FRR@0.5/h {real['frr@0.5']:.0%} "
                        f"FRR@1/h {real['frr@1']:.0%}  | + synthesized speech {both['hours'] * 60:5.1f} min: "
                        f"FRR@0.5/h {both['frr@0.5']:.0%} FRR@1/h {both['frr@1']:.0%}",
                        flush=True,
                    )
    print("\nPooled over words and draws (FRR weighted by test clips):")
    for model in args.models.split(","):
        chosen = [row for row in rows if row["model"] == model]
        clips = sum(row["real"]["positives"] for row in chosen)
        line = f"  {model:15s} {clips:3d} test clips"
        for audio in ("real", "both"):
            hours = np.mean([row[audio]["hours"] for row in chosen])
            for target in TARGETS:
                frr = sum(row[audio][f"frr@{target:g}"] * row[audio]["positives"] for row in chosen) / clips
                line += f"  {audio} ({hours * 60:.0f} min) FRR@{target:g}/h {frr:.1%}"
        print(line)
    print(
        "\nReal negatives resolve at best one false accept per "
        f"{np.mean([row['real']['hours'] for row in rows]) * 60:.1f} min; targets: FRR <= 5% at <= 0.5 FA/h "
        "on real-speaker positives, synthesized-only positives within 5 points."
    )


if __name__ == "__main__":
    main()
