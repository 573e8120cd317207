"""Streaming keyword detection against running the spotter on every window, in one run.

A speech_embedding keyword spotter (random head; speed does not depend on its weights) slides over noise
with tones every 80 ms:

- offline, :class:`KeywordDetector` computes the base once per 80 ms hop and runs the head on runs of
  embeddings, against base and head run whole on every window (the clip with its context);
- on device, the streaming TFLite model (one 80 ms hop per call, state in and out) against the
  non-streaming TFLite export run on the clip ending at every hop, both with LiteRT on one thread.

After a warm-up call each, rounds alternate between the contenders; medians of wall and process CPU time
are printed with their ratio. The scores of each pair are compared too. Run from the repository root::

    PYTHONPATH=. python benchmarks/bench_streaming.py [--seconds 30] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from audio_transfer.bases import load_base
from audio_transfer.export import TFLiteClassifier, export_tflite
from audio_transfer.streaming import KeywordDetector, TFLiteStreamingSpotter, export_streaming_tflite
from audio_transfer.tasks import KeywordSpotter

SAMPLE_RATE = 16000
HOP = 1280


def audio(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    tones = 0.3 * np.sin(2 * np.pi * (400 + 300 * np.sin(0.5 * t)) * t) * (np.sin(1.3 * t) > 0.5)
    return (0.02 * rng.standard_normal(len(t)) + tones).astype(np.float32)


def timed(function) -> tuple[object, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def compare(name: str, contenders: dict, rounds: int, *, items: int) -> dict[str, object]:
    """Median wall/CPU seconds of each contender over alternating rounds (and per item, of ``items``);
    returns their last results."""
    for function in contenders.values():  # warm-up: tracing and first-call allocation are not timed
        function()
    times = {key: ([], []) for key in contenders}
    results = {}
    for _ in range(rounds):
        for key, function in contenders.items():
            results[key], wall, cpu = timed(function)
            times[key][0].append(wall)
            times[key][1].append(cpu)
    (fast, slow) = contenders
    print(f"\n{name}")
    for key, (walls, cpus) in times.items():
        wall, cpu = statistics.median(walls), statistics.median(cpus)
        print(f"  {key:<36} wall {wall:8.3f} s   cpu {cpu:8.3f} s   ({1e3 * cpu / items:.2f} ms cpu each)")
    for label, index in (("wall", 0), ("cpu", 1)):
        ratio = statistics.median(times[slow][index]) / statistics.median(times[fast][index])
        print(f"  {slow} / {fast} ({label}): {ratio:.1f}x")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the audio")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    spotter = KeywordSpotter(load_base("speech_embedding"), ["_silence_", "_unknown_", "yes", "no"])
    waveform = audio(args.seconds)
    fast = KeywordDetector(spotter, clip_seconds=1.0)
    slow = KeywordDetector(spotter, clip_seconds=1.0)
    slow.uses_embeddings = False
    print(
        f"{args.seconds:g} s of audio, {fast.num_windows(len(waveform))} windows of "
        f"{fast.window_seconds:g} s (1 s clip, {spotter.context_seconds:g} s context each side) every 80 ms"
    )
    results = compare(
        "Offline posteriors (KeywordDetector)",
        {
            "base once per hop, head per window": lambda: fast.posteriors(waveform),
            "base and head on every window": lambda: slow.posteriors(waveform),
        },
        args.rounds,
        items=fast.num_windows(len(waveform)),
    )
    first, second = results.values()
    print(f"  max abs difference: {np.abs(first - second).max():.2e}")

    with tempfile.TemporaryDirectory() as folder:
        streaming = TFLiteStreamingSpotter.from_file(
            export_streaming_tflite(spotter, clip_seconds=1.0, out=f"{folder}/stream.tflite").path
        )
        clip = TFLiteClassifier.from_file(
            export_tflite(
                spotter,
                labels=spotter.labels,
                sample_rate=SAMPLE_RATE,
                out=f"{folder}/clip.tflite",
                num_samples=SAMPLE_RATE,
            ).path
        )
    hops = len(waveform) // HOP
    clips = np.stack([waveform[max(0, (h + 1) * HOP - SAMPLE_RATE) :][:SAMPLE_RATE] for h in range(12, hops)])
    compare(
        f"On device, LiteRT 1 thread: {hops} hops",
        {
            "streaming model, one call per hop": lambda: streaming.run(waveform[: hops * HOP]),
            "clip model on the last 1 s each hop": lambda: clip.predict(clips),
        },
        args.rounds,
        items=hops,
    )


if __name__ == "__main__":
    main()
