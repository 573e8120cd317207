"""Export targets of a keyword spotter: float32 and int8 TFLite side by side, in one run.

Exports a trained run (e.g. the one ``audio-transfer demo`` writes) with ``audio-transfer export`` as float32
and as int8, each with its parity report on the run's held-out clips, then times both files with LiteRT on
one thread, alternating rounds after a warm-up call each, and prints medians, their ratio and the issue's
targets: float32 max |Δp| ≤ 1e-4; int8 top-1 agreement ≥ 99%, accuracy drop ≤ 1 point, size ≤ 500 KB,
≤ 5 ms per 1 s clip. Run from the repository root::

    audio-transfer demo --out /tmp/demo
    PYTHONPATH=. python benchmarks/bench_export.py /tmp/demo/run [--rounds 5] [--float-blocks 2 3 5]
        [--extra-clips DATA ...]

The run's validation split is small (180 clips for the demo), and int8 flips mostly clips whose top two
Keras probabilities are nearly tied, so a few such clips decide its agreement. ``--extra-clips`` adds labelled
folders (e.g. ``audio-transfer synth --seed 7`` voices, real recordings) on which every file is compared with
Keras as well (the same table, and how many of those clips Keras itself calls close).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from audio_transfer.data import decode_examples, load_labelled_audio
from audio_transfer.export import ParityReport, TFLiteClassifier
from audio_transfer.export.parity_report import CLOSE_CALL_MARGIN
from audio_transfer.export.tflite_export import LITERT_RUNTIME
from audio_transfer.training import load_run


def export(run_dir: Path, quantize: str, out: Path, *extra: str) -> dict:
    command = [sys.executable, "-m", "audio_transfer", "export", str(run_dir), "--format", "tflite"]
    command += ["--quantize", quantize, "--out", str(out), "--json", *extra]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(result.stdout)["report"]


def extra_clips(run_dir: Path, folders: list[Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Waveforms, label indices and Keras probabilities of the clips of the run's classes in ``folders``."""
    run = load_run(run_dir)
    examples = []
    for folder in folders:
        examples += [clip for clip in load_labelled_audio(folder).examples if clip.label in run.labels]
    config = run.config
    clips = decode_examples(examples, sample_rate=config.sample_rate, clip_seconds=config.clip_seconds)
    probabilities = run.task.predict(clips.waveforms, batch_size=64, verbose=0)
    return clips.waveforms, clips.label_indices(run.labels), probabilities


def print_table(reports: dict[str, dict], milliseconds: dict[str, float]) -> None:
    """One row per exported file: its parity report's figures and ``milliseconds`` per clip."""
    columns = ("size KB", "ms/clip", "agreement", "close", "Keras acc", "file acc", "max|dp|", "mean|dp|")
    print(f"{'file':8s}" + "".join(f"{column:>10s}" for column in columns))
    for name, report in reports.items():
        values = (
            f"{report['size_bytes'] / 1000:10.1f}",
            f"{milliseconds[name]:10.2f}",
            f"{report['top1_agreement']:10.3f}",
            f"{report['close_call_disagreements']:10d}",
            f"{report['keras_accuracy']:10.3f}",
            f"{report['exported_accuracy']:10.3f}",
            f"{report['max_abs_probability_difference']:10.2e}",
            f"{report['mean_max_abs_probability_difference']:10.2e}",
        )
        print(f"{'float32' if name == 'none' else name:8s}" + "".join(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a keyword-spotting run folder (model.keras, config.yaml)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating timing rounds (default 5)")
    parser.add_argument("--calls", type=int, default=50, help="invocations per round (default 50)")
    parser.add_argument(
        "--float-blocks",
        type=int,
        nargs="+",
        default=[],
        metavar="N",
        help="also export int8 keeping N base blocks float (a row int8+N each), to weigh size and agreement",
    )
    parser.add_argument(
        "--extra-clips",
        type=Path,
        action="append",
        default=[],
        metavar="DATA",
        help="a labelled folder or CSV manifest (classes the run lacks are ignored) on which every "
        "file is also compared with Keras; repeatable",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_export_") as folder:
        reports, classifiers = {}, {}
        variants = {"none": ("none",), "int8": ("int8",)}
        for blocks in args.float_blocks:
            variants[f"int8+{blocks}"] = ("int8", "--float-blocks", str(blocks))
        for name, (quantize, *extra) in variants.items():
            path = Path(folder) / f"{name}.tflite"
            reports[name] = export(args.run_dir, quantize, path, *extra)
            classifiers[name] = TFLiteClassifier(path.read_bytes(), num_threads=1)
        num_samples = classifiers["none"].num_samples
        clip = np.random.default_rng(0).uniform(-0.1, 0.1, (1, num_samples)).astype(np.float32)
        seconds: dict[str, list[float]] = {name: [] for name in classifiers}
        for classifier in classifiers.values():
            classifier.predict(clip)  # warm-up
        for _ in range(args.rounds):
            for name, classifier in classifiers.items():
                seconds[name].append(classifier.run(np.repeat(clip, args.calls, axis=0))[1])

    print(f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}, LiteRT 1 thread")
    print(
        f"close: disagreements on clips whose top two Keras probabilities differ by less than "
        f"{CLOSE_CALL_MARGIN}"
    )
    milliseconds = {name: 1e3 * statistics.median(times) for name, times in seconds.items()}
    print_table(reports, milliseconds)
    speed = milliseconds["none"] / milliseconds["int8"]
    size = reports["none"]["size_bytes"] / reports["int8"]["size_bytes"]
    print(f"int8 vs float32: {speed:.2f}x the speed, {size:.2f}x smaller")
    float32, int8 = reports["none"], reports["int8"]
    targets = (
        ("float32 max |dp|", float32["max_abs_probability_difference"], 1e-4),
        ("int8 accuracy drop (points)", 100 * (int8["keras_accuracy"] - int8["exported_accuracy"]), 1.0),
        ("int8 size (KB)", int8["size_bytes"] / 1000, 500.0),
        ("int8 ms per clip", milliseconds["int8"], 5.0),
    )
    for label, value, most in targets:
        print(f"target {label}: {value:.4g} (goal <= {most:g}) {'met' if value <= most else 'NOT met'}")
    agreement = int8["top1_agreement"]
    verdict = "met" if agreement >= 0.99 else "NOT met"
    print(f"target int8 top-1 agreement: {agreement:.4g} (goal >= 0.99) {verdict}")
    if args.extra_clips:
        compare_on_extra_clips(args.run_dir, args.extra_clips, classifiers, reports)


def compare_on_extra_clips(
    run_dir: Path, folders: list[Path], classifiers: dict[str, TFLiteClassifier], reports: dict[str, dict]
) -> None:
    """The table again, on the clips of ``folders``: each file's parity report against Keras there."""
    waveforms, label_indices, expected = extra_clips(run_dir, folders)
    top_two = np.sort(expected, axis=1)[:, -2:]
    close_calls = int(np.sum(top_two[:, 1] - top_two[:, 0] < CLOSE_CALL_MARGIN))
    print(f"extra clips: {len(waveforms)}, {close_calls} of them Keras close calls")
    extra_reports, milliseconds = {}, {}
    for name, classifier in classifiers.items():
        probabilities, seconds_per_clip = classifier.run(waveforms)
        extra_reports[name] = ParityReport.compare(
            keras_probabilities=expected,
            exported_probabilities=probabilities,
            label_indices=label_indices,
            size_bytes=reports[name]["size_bytes"],
            seconds_per_clip=seconds_per_clip,
            format="tflite",
            quantize=reports[name]["quantize"],
            input_dtype=classifier.input_dtype.name,
            output_dtype=classifier.output_dtype.name,
            runtime=LITERT_RUNTIME,
        ).to_dict()
        milliseconds[name] = extra_reports[name]["mean_latency_ms"]
    print_table(extra_reports, milliseconds)


if __name__ == "__main__":
    main()
