"""Cut long recordings into short clips, a folder per class, named so that splits do not leak.

Reads RECORDINGS/<class>.wav (one recording per class, e.g.
$AUDIO_TRANSFER_DATA/speech_commands_subset/_background_noise_) or RECORDINGS/<class>/*.wav (several per
class); writes OUT/<class>/<recording>-b<block>_nohash_<n>.wav, ready for
`audio-transfer train OUT --task classify` (see sound_classification.sh).

Neighbouring clips of one recording sound alike, so a validation clip cut next to a training clip would
score the model on audio it has almost heard. Each run of --block-clips consecutive clips is therefore named
as one "speaker" (<recording>-b<block>, the Speech Commands <speaker>_nohash_<n> convention), and
audio-transfer keeps a speaker's clips in one split: validation clips come from other parts of the
recordings. Blocks are numbered from the start of the recording, so clips cut from a later stretch
(--start-seconds) make a held-out folder that shares no block with the training folder.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from audio_transfer.audio import AUDIO_EXTENSIONS, load_audio, save_audio

SAMPLE_RATE = 16000


def is_audio(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in AUDIO_EXTENSIONS


def recordings(folder: Path) -> list[tuple[str, Path]]:
    """``(class, recording)`` pairs: top-level files are named after their class, sub-folders hold a class."""
    found = []
    for path in sorted(folder.iterdir()):
        if path.is_dir():
            found += [(path.name, file) for file in sorted(path.iterdir()) if is_audio(file)]
        elif is_audio(path):
            found.append((path.stem, path))
    return found


def slice_recording(
    path: Path, out: Path, *, clip_seconds: float, block_clips: int, start_seconds: float, max_clips: int
) -> int:
    """Write the recording's whole clips from ``start_seconds`` on into ``out``; returns how many."""
    waveform = load_audio(path, sample_rate=SAMPLE_RATE)
    clip = round(clip_seconds * SAMPLE_RATE)
    first = round(start_seconds / clip_seconds)
    last = min(len(waveform) // clip, first + max_clips)
    for index in range(first, last):
        name = f"{path.stem}-b{index // block_clips:03d}_nohash_{index}.wav"
        save_audio(out / name, waveform[index * clip : (index + 1) * clip], sample_rate=SAMPLE_RATE)
    return max(last - first, 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("recordings", type=Path, metavar="RECORDINGS", help="folder of long recordings")
    parser.add_argument("out", type=Path, metavar="OUT", help="folder to write the clips to")
    parser.add_argument("--clip-seconds", type=float, default=1.0, help="clip length (default 1)")
    parser.add_argument(
        "--block-clips", type=int, default=5, help="consecutive clips per speaker id (default 5)"
    )
    parser.add_argument(
        "--start-seconds", type=float, default=0.0, help="start at the clip nearest S s (default 0)"
    )
    parser.add_argument(
        "--max-clips", type=int, default=sys.maxsize, help="at most N clips per recording (default: all)"
    )
    args = parser.parse_args(argv)
    if args.clip_seconds <= 0 or args.block_clips < 1 or args.max_clips < 1 or args.start_seconds < 0:
        parser.error("--clip-seconds, --block-clips and --max-clips must be positive, --start-seconds >= 0")
    found = recordings(args.recordings)
    if not found:
        parser.error(f"no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))}) in {args.recordings}")
    for label, path in found:
        count = slice_recording(
            path,
            args.out / label,
            clip_seconds=args.clip_seconds,
            block_clips=args.block_clips,
            start_seconds=args.start_seconds,
            max_clips=args.max_clips,
        )
        print(f"{count:4d} clips of {label} from {path.name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
