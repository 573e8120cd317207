"""Clips per second of three feature pipelines on the same files, in one run.

The data: ``--clips`` copies (2,000 by default) of the shared Speech Commands subset's 1 s clips, in class
folders under a temporary folder. Each contender goes from the files to features, model loading included:

- ``in-process``: the store embedder (:mod:`audio_transfer.embedding.store_embedder`), folder → feature store
  with ``speech_embedding`` in this process;
- ``beam-direct``: :func:`~audio_transfer.embedding.embed_pipeline.run_embed_pipeline`, the same store made
  by the Beam DirectRunner with ``--workers`` worker processes (``multi_processing``), then with as many
  threads (``multi_threading``, the running mode ``audio-transfer embed`` defaults to, with one worker),
  worker start-up included;
- ``openwakeword``: openWakeWord 0.5.1's ONNX Runtime feature pipeline (melspectrogram + embedding models,
  ``AudioFeatures.embed_clips``) on the same clips as int16, padded with the same context as ours so that
  both embed the same audio (decoding timed, nothing written).

Targets (PASS/FAIL): in-process >= 1.5x openWakeWord; Beam DirectRunner >= 0.8x in-process. Run from the
repository root::

    PYTHONPATH=. nice python benchmarks/bench_embed.py [--clips 2000] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from audio_transfer.atomic_files import write_bytes
from audio_transfer.audio import crop_or_pad, load_audio

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("AUDIO_TRANSFER_DATA", REPO_ROOT.parent / "shared" / "data"))
SAMPLE_RATE = 16000


def copy_clips(source: Path, target: Path, count: int) -> list[Path]:
    """``count`` copies of the clips of ``source``'s class folders, round robin, as ``target/<label>/``."""
    clips = sorted(path for path in source.glob("*/*.wav") if not path.parent.name.startswith("_"))
    copies = []
    for index in range(count):
        clip = clips[index % len(clips)]
        copy = target / clip.parent.name / f"{clip.stem}_copy{index // len(clips)}.wav"
        copy.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(copy, clip.read_bytes())
        copies.append(copy)
    return copies


def time_in_process(data: Path, out: Path) -> tuple[float, int]:
    from audio_transfer.bases import load_base
    from audio_transfer.data import load_labelled_audio
    from audio_transfer.embedding.base_identity import store_identity
    from audio_transfer.embedding.embed_pipeline import embed_lengths
    from audio_transfer.embedding.store_embedder import embed_to_store

    start = time.perf_counter()
    base = load_base("speech_embedding")
    clip_seconds, context_seconds = embed_lengths(task="kws")
    identity = store_identity(
        base,
        base_name="speech_embedding",
        sample_rate=base.sample_rate,
        clip_seconds=clip_seconds,
        context_seconds=context_seconds,
    )
    store = embed_to_store(out, load_labelled_audio(data).examples, base=base, identity=identity)
    return time.perf_counter() - start, store.num_examples


def time_beam(data: Path, out: Path, workers: int, mode: str) -> tuple[float, int]:
    from audio_transfer.embedding.embed_pipeline import run_embed_pipeline

    start = time.perf_counter()
    store = run_embed_pipeline(
        data=data,
        base="speech_embedding",
        out=out,
        direct_num_workers=workers,
        direct_running_mode=mode,
    )
    return time.perf_counter() - start, store.num_examples


def time_openwakeword(files: list[Path], *, context_seconds: float, batch_size: int) -> tuple[float, tuple]:
    from openwakeword.utils import AudioFeatures

    start = time.perf_counter()
    cores = os.cpu_count() or 1
    features = AudioFeatures(inference_framework="onnx", ncpu=cores)
    context = round(context_seconds * SAMPLE_RATE)
    clips = np.stack(
        [
            np.pad(crop_or_pad(load_audio(path, sample_rate=SAMPLE_RATE), num_samples=SAMPLE_RATE), context)
            for path in files
        ]
    )
    embeddings = features.embed_clips((clips * 32767).astype(np.int16), batch_size=batch_size, ncpu=cores)
    return time.perf_counter() - start, embeddings.shape


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, default=2000)
    parser.add_argument(
        "--workers", type=int, default=2, help="DirectRunner workers (processes, then threads)"
    )
    parser.add_argument("--batch-size", type=int, default=64, help="openWakeWord's batch size")
    args = parser.parse_args()
    source = DATA_DIR / "speech_commands_subset"
    if not source.is_dir():
        raise SystemExit(f"The shared clips are missing: {source} (set AUDIO_TRANSFER_DATA).")

    from audio_transfer.embedding.embed_pipeline import embed_lengths

    _, context_seconds = embed_lengths(task="kws")
    n = args.clips
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        files = copy_clips(source, folder / "clips", n)
        copy_clips(source, folder / "clips_twice", 2 * n)
        print(f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}, {n} clips of 1 s")
        seconds_oww, shape = time_openwakeword(
            files, context_seconds=context_seconds, batch_size=args.batch_size
        )
        local = [
            time_in_process(folder / name, folder / f"local_{name}") for name in ("clips", "clips_twice")
        ]
        beam = [
            time_beam(folder / name, folder / f"beam_{name}", args.workers, "multi_processing")
            for name in ("clips", "clips_twice")
        ]
        threads = time_beam(folder / "clips", folder / "beam_threads", args.workers, "multi_threading")
        print(f"load average {os.getloadavg()[0]:.1f} at the end")
    print(f"openWakeWord features {shape}; ours (clips, windows, 96) of the same audio")
    print(f"{'pipeline':<40} {'clips':>6} {'seconds':>8} {'clips/s':>8} {'marginal':>9}")
    rows = {
        "in-process (store embedder)": local,
        f"Beam DirectRunner, {args.workers} processes": beam,
        f"Beam DirectRunner, {args.workers} threads": [threads],
        "openWakeWord 0.5.1 (ONNX Runtime)": [(seconds_oww, shape[0])],
    }
    for name, runs in rows.items():
        seconds, count = runs[0]
        # Clips per second of the second N clips: the rate once start-up costs are paid.
        marginal = f"{n / (runs[1][0] - seconds):>9.1f}" if len(runs) > 1 else f"{'':>9}"
        print(f"{name:<40} {count:>6} {seconds:>8.1f} {count / seconds:>8.1f} {marginal}")
    rate_local, rate_beam, rate_oww = n / local[0][0], n / beam[0][0], shape[0] / seconds_oww
    marginal_local, marginal_beam = n / (local[1][0] - local[0][0]), n / (beam[1][0] - beam[0][0])
    for name, ratio, target in (
        ("in-process / openWakeWord", rate_local / rate_oww, 1.5),
        ("Beam threads / in-process", n / threads[0] / rate_local, 0.8),
        ("Beam processes / in-process", rate_beam / rate_local, 0.8),
        ("  the same, marginal rates", marginal_beam / marginal_local, 0.8),
    ):
        print(f"{name:<40} {ratio:>6.2f}x  target >= {target}x  {'PASS' if ratio >= target else 'FAIL'}")


if __name__ == "__main__":
    main()
