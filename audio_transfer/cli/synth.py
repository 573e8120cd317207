"""``audio-transfer synth --words yes,no --out DIR``: a labelled keyword dataset spoken by eSpeak NG."""

from __future__ import annotations

import argparse
from pathlib import Path

from audio_transfer.atomic_files import writable_folder
from audio_transfer.audio import AUDIO_EXTENSIONS
from audio_transfer.cli.output import CommandResult
from audio_transfer.errors import ConfigError
from audio_transfer.synth import BACKENDS, DEFAULT_PER_WORD, synthesize_keywords


def _words(value: str) -> list[str]:
    return [word.strip() for word in value.split(",") if word.strip()]


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "synth",
        help="synthesize a keyword dataset offline with eSpeak NG",
        description=(
            "Speak each word with many eSpeak NG voices (English accents x voice variants) at random rates, "
            "pitches and intonation, trim the silence, place the word at a random offset in a fixed-length "
            "clip, add light noise and gain, and write <out>/<word>/<voice>_nohash_<n>.wav at 16 kHz: the "
            "Speech Commands layout, with one speaker id per voice so that speaker-disjoint splits keep "
            "voices apart. The same seed writes the same files."
        ),
    )
    parser.add_argument("--words", type=_words, required=True, help="comma-separated words: yes,no,up,down")
    parser.add_argument(
        "--out", type=Path, required=True, help="dataset folder to write (one sub-folder per word)"
    )
    parser.add_argument(
        "--per-word",
        type=int,
        default=DEFAULT_PER_WORD,
        help=f"clips per word (default {DEFAULT_PER_WORD})",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--noise-dir",
        type=Path,
        default=None,
        help="folder of background-noise recordings (e.g. Speech Commands' _background_noise_) mixed in "
        "instead of synthetic noise",
    )
    parser.add_argument(
        "--sample-rate", type=int, default=16000, help="rate of the files in Hz (default 16000)"
    )
    parser.add_argument("--clip-seconds", type=float, default=1.0, help="length of each clip (default 1.0)")
    parser.add_argument(
        "--backend", choices=BACKENDS, default="auto", help="espeak-ng program or library (default: auto)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the audio files already in the word folders"
    )
    return parser


def run(args: argparse.Namespace) -> CommandResult:
    writable_folder(args.out)
    noise_files = _noise_files(args.noise_dir) if args.noise_dir is not None else ()
    report = synthesize_keywords(
        args.words,
        out_dir=args.out,
        per_word=args.per_word,
        seed=args.seed,
        sample_rate=args.sample_rate,
        clip_seconds=args.clip_seconds,
        noise_files=noise_files,
        backend=args.backend,
        overwrite=args.overwrite,
    )
    return CommandResult(data=report.to_dict(), text=report.to_text())


def _noise_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise ConfigError(f"--noise-dir {str(folder)!r} is not a folder.")
    files = sorted(path for path in folder.iterdir() if path.suffix.lower() in AUDIO_EXTENSIONS)
    if not files:
        raise ConfigError(
            f"--noise-dir {str(folder)!r} holds no audio files ({', '.join(AUDIO_EXTENSIONS)})."
        )
    return files
