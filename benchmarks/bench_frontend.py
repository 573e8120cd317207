"""Batched in-graph log-mel (``get_frontend("log_mel_40")``) against per-clip librosa, in one run.

Both compute the same features (25 ms periodic Hann windows every 10 ms, FFT 512, power, 40 Slaney mel
bands 20-7600 Hz, ``log(mel + 1e-6)``) for 1 s clips at 16 kHz: librosa clip by clip, as a data pipeline
calls it, the layer on whole batches inside a ``tf.function``. Keras's own ``MelSpectrogram`` (RFFT,
HTK mel) is timed alongside. Rounds alternate between the contenders and medians are reported, for wall
time and for process CPU time: on a shared machine wall time mostly measures the other processes (and
punishes librosa's BLAS threads most), CPU time the work. ``--single-thread`` pins TensorFlow and BLAS
to one thread for a per-core comparison. Run from the repository root::

    PYTHONPATH=. python benchmarks/bench_frontend.py [--clips 256] [--batch-size 256] [--single-thread]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

if "--single-thread" in sys.argv:  # must precede numpy's import to reach its BLAS
    os.environ.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import librosa
import numpy as np
import tensorflow as tf

from audio_transfer.features import get_frontend

SAMPLE_RATE = 16000


def librosa_log_mel(waveform: np.ndarray) -> np.ndarray:
    mel = librosa.feature.melspectrogram(
        y=waveform,
        sr=SAMPLE_RATE,
        n_fft=512,
        hop_length=160,
        win_length=400,
        center=False,
        n_mels=40,
        fmin=20.0,
        fmax=7600.0,
    )
    return np.log(mel + 1e-6).T


def in_batches(function, clips: np.ndarray, batch_size: int) -> None:
    for start in range(0, len(clips), batch_size):
        function(clips[start : start + batch_size]).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, default=256, help="1 s clips the batched contenders process")
    parser.add_argument("--librosa-clips", type=int, default=32, help="clips librosa processes per round")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--single-thread", action="store_true", help="one TensorFlow and BLAS thread")
    args = parser.parse_args()
    if args.single_thread:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)

    rng = np.random.default_rng(0)
    clips = (0.1 * rng.standard_normal((args.clips, SAMPLE_RATE))).astype(np.float32)
    signature = [tf.TensorSpec([None, SAMPLE_RATE], tf.float32)]
    frontend = tf.function(get_frontend("log_mel_40"), input_signature=signature)
    keras_mel = keras.layers.MelSpectrogram(
        fft_length=512, sequence_stride=160, sequence_length=400, sampling_rate=SAMPLE_RATE, num_mel_bins=40
    )
    keras_function = tf.function(keras_mel, input_signature=signature)

    difference = np.abs(frontend(clips[:2]).numpy() - np.stack([librosa_log_mel(c) for c in clips[:2]])).max()
    load = os.getloadavg()[0]
    print(f"cores {os.cpu_count()}, load average {load:.1f}, single thread {args.single_thread}")
    print(f"max abs difference of LogMelSpectrogram to librosa: {difference:.2e}")

    librosa_clips = clips[: args.librosa_clips]
    contenders = {
        "librosa, per clip": (lambda: [librosa_log_mel(c) for c in librosa_clips], len(librosa_clips)),
        f"LogMelSpectrogram, batch {args.batch_size}": (
            lambda: in_batches(frontend, clips, args.batch_size),
            len(clips),
        ),
        f"keras MelSpectrogram, batch {args.batch_size}": (
            lambda: in_batches(keras_function, clips, args.batch_size),
            len(clips),
        ),
    }
    for run, _ in contenders.values():  # warm-up: tracing, librosa's lazy imports
        run()
    wall: dict[str, list[float]] = {name: [] for name in contenders}
    cpu: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.rounds):
        for name, (run, count) in contenders.items():
            wall_start, cpu_start = time.perf_counter(), time.process_time()
            run()
            wall[name].append((time.perf_counter() - wall_start) / count)
            cpu[name].append((time.process_time() - cpu_start) / count)

    wall_librosa = float(np.median(wall["librosa, per clip"]))
    cpu_librosa = float(np.median(cpu["librosa, per clip"]))
    print(f"{'contender':36s} {'wall us/clip':>12s} {'ratio':>7s} {'CPU us/clip':>12s} {'ratio':>7s}")
    for name in contenders:
        wall_median, cpu_median = float(np.median(wall[name])), float(np.median(cpu[name]))
        print(
            f"{name:36s} {wall_median * 1e6:12.1f} {wall_librosa / wall_median:6.1f}x "
            f"{cpu_median * 1e6:12.1f} {cpu_librosa / cpu_median:6.1f}x"
        )


if __name__ == "__main__":
    main()
