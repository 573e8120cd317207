"""How well do eSpeak NG keywords teach a classifier to recognise real people?

Synthesizes the ten digits (zero ... nine) with :func:`audio_transfer.synth.synthesize_keywords` under
several named settings, embeds every clip with the frozen speech_embedding model, trains a logistic
regression on the mean of each clip's embeddings, and reports its accuracy on the real digit clips of a
Speech Commands-layout folder (speakers the synthesizer never saw). Each clip is embedded with ``--context``
seconds of silence added on both sides, as the keyword-spotting task does inside its model (0.5 s): more
windows to pool, each seeing the word against silence. The issue's reference: 600 eSpeak clips +
frozen speech_embedding + logistic regression reach 92.8% on real digits; the goal is 96%.

For scale, the same regression is also trained on the real clips themselves, leaving each speaker out in
turn and testing on that speaker's clips: what real recordings of other people teach on the same test clips.

The embedding comes from ``audio_transfer.bases.load_base("speech_embedding")`` when that base is installed,
else from openWakeWord's TFLite conversion of the same model (``--oww-models``: the folder holding
``melspectrogram.tflite`` and ``embedding_model.tflite`` from the ``openwakeword==0.5.1`` wheel).
scikit-learn is needed for the classifier (``pip install -e '.[bench]'``; not a library dependency).

Usage::

    python benchmarks/synth_vs_real.py --real $AUDIO_TRANSFER_DATA/speech_commands_subset \\
        --oww-models /tmp/oww/openwakeword/resources/models --settings baseline,default --seeds 0 1

Prints one line per (setting, per-word count, seed) and a summary with the mean over seeds.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from audio_transfer.audio import AUDIO_EXTENSIONS, load_audio
from audio_transfer.data import parse_speaker
from audio_transfer.synth import ENGLISH_VOICES, SynthSettings, synthesize_keywords

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
STANDARD_VARIANTS = ("", *(f"m{index}" for index in range(1, 9)), *(f"f{index}" for index in range(1, 6)))

# eSpeak's usual ranges, no punctuation, no noise: what a first try looks like.
NARROW = {
    "rates_wpm": (120, 220),
    "pitches": (30, 80),
    "pitch_ranges": (30, 80),
    "endings": ("",),
    "noise_probability": 0.0,
}
# name -> (settings, mix the real folder's _background_noise_ files instead of white noise)
SETTINGS: dict[str, tuple[SynthSettings, bool]] = {
    "baseline": (SynthSettings(voices=ENGLISH_VOICES, variants=STANDARD_VARIANTS, **NARROW), False),
    "all-variants": (SynthSettings(**NARROW), False),
    "wide-prosody": (SynthSettings(endings=("",), noise_probability=0.0), False),
    "wide+endings": (SynthSettings(noise_probability=0.0), False),
    "default": (SynthSettings(), False),
    "default+real-noise": (SynthSettings(), True),
    "default+real-noise-5-20dB": (SynthSettings(snr_db_range=(5.0, 20.0)), True),
}


class OpenWakeWordEmbedding:
    """speech_embedding through openWakeWord's TFLite files: 16 kHz float clips -> (windows, 96)."""

    def __init__(self, models: Path):
        from ai_edge_litert.interpreter import Interpreter

        self.melspectrogram = Interpreter(str(models / "melspectrogram.tflite"))
        self.embedding = Interpreter(str(models / "embedding_model.tflite"))

    @staticmethod
    def _run(interpreter, array: np.ndarray) -> np.ndarray:
        index = interpreter.get_input_details()[0]["index"]
        interpreter.resize_tensor_input(index, array.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(index, array)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

    def __call__(self, waveforms: np.ndarray) -> list[np.ndarray]:
        embeddings = []
        for waveform in waveforms:
            # openWakeWord feeds int16-scaled samples and rescales the log-mel as x / 10 + 2.
            mel = self._run(self.melspectrogram, (waveform * 32767.0).astype(np.float32)[None])[0, 0] / 10 + 2
            windows = np.stack([mel[start : start + 76] for start in range(0, len(mel) - 75, 8)])
            embeddings.append(self._run(self.embedding, windows[..., None].astype(np.float32))[:, 0, 0])
        return embeddings


def make_embedder(oww_models: Path | None):
    if oww_models is not None:
        return OpenWakeWordEmbedding(oww_models)
    from audio_transfer.bases import load_base  # once the speech_embedding base has landed

    base = load_base("speech_embedding")
    return lambda waveforms: list(np.asarray(base(waveforms.astype(np.float32))))


def pooled_embeddings(embed, waveforms: np.ndarray, context_seconds: float) -> np.ndarray:
    """Mean embedding ``(clips, 96)`` of each clip with ``context_seconds`` of silence on both sides."""
    padding = round(context_seconds * 16000)
    return np.stack(
        [windows.mean(axis=0) for windows in embed(np.pad(waveforms, [(0, 0), (padding, padding)]))]
    )


def load_folder(folder: Path, words: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """1 s clips ``(n, 16000)``, label indices and speaker ids (file-name convention) of the word folders."""
    waveforms, labels, speakers = [], [], []
    for index, word in enumerate(words):
        for path in sorted((folder / word).iterdir()):
            if path.suffix.lower() in AUDIO_EXTENSIONS:
                waveform = load_audio(path, sample_rate=16000)[:16000]
                waveforms.append(np.pad(waveform, (0, 16000 - len(waveform))))
                labels.append(index)
                speakers.append(parse_speaker(f"{word}/{path.name}", label=word) or path.stem)
    return np.stack(waveforms), np.asarray(labels), np.asarray(speakers)


def _classifier(c: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))


def leave_one_speaker_out(
    embeddings: np.ndarray, labels: np.ndarray, speakers: np.ndarray, c: float
) -> float:
    """Accuracy of the regression on each speaker's clips, trained on every other speaker's."""
    predictions = np.empty_like(labels)
    for speaker in np.unique(speakers):
        held = speakers == speaker
        predictions[held] = _classifier(c).fit(embeddings[~held], labels[~held]).predict(embeddings[held])
    return float(np.mean(predictions == labels))


def accuracy(
    train: np.ndarray, train_labels: np.ndarray, test: np.ndarray, test_labels: np.ndarray, c: float
):
    predictions = _classifier(c).fit(train, train_labels).predict(test)
    per_word = [float(np.mean(predictions[test_labels == k] == k)) for k in range(len(DIGITS))]
    return float(np.mean(predictions == test_labels)), per_word


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--real", type=Path, required=True, help="Speech Commands-layout folder with digit folders"
    )
    parser.add_argument("--oww-models", type=Path, default=None, help="openWakeWord's TFLite model folder")
    parser.add_argument(
        "--settings", default=",".join(SETTINGS), help=f"comma-separated from {', '.join(SETTINGS)}"
    )
    parser.add_argument("--per-word", type=int, nargs="+", default=[60, 200], help="clips per digit")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="synthesis seeds")
    parser.add_argument("--c", type=float, default=0.01, help="inverse regularisation of the regression")
    parser.add_argument(
        "--context", type=float, nargs="+", default=[0.0, 0.5], help="seconds of silence around each clip"
    )
    parser.add_argument("--work", type=Path, default=None, help="where to write the synthetic data (temp)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    embed = make_embedder(args.oww_models)
    real_waveforms, real_labels, real_speakers = load_folder(args.real, DIGITS)
    real = {context: pooled_embeddings(embed, real_waveforms, context) for context in args.context}
    noise_files = sorted(
        path
        for path in (args.real / "_background_noise_").glob("*")
        if path.suffix.lower() in AUDIO_EXTENSIONS
    )
    work = args.work or Path(tempfile.mkdtemp(prefix="synth_vs_real_"))
    print(
        f"real: {len(real_labels)} clips of {len(DIGITS)} digits from {args.real}; synthetic data in {work}"
    )
    header = f"{'setting':28} {'per word':>8} {'seed':>4} {'context':>7} {'accuracy':>8}  {'synth s':>7}"
    for context in args.context:
        score = leave_one_speaker_out(real[context], real_labels, real_speakers, args.c)
        print(
            f"reference, trained on real clips ({len(np.unique(real_speakers))} speakers, each tested on "
            f"a regression of the others' clips), context {context:.2f} s: {score:.1%}"
        )
    print(header + "  per digit")
    summary: dict[tuple[str, int, float], list[float]] = {}
    for name in args.settings.split(","):
        settings, real_noise = SETTINGS[name]
        for per_word in args.per_word:
            for seed in args.seeds:
                out_dir = work / f"{name}-{per_word}-{seed}"
                start = time.perf_counter()
                synthesize_keywords(
                    DIGITS,
                    out_dir=out_dir,
                    per_word=per_word,
                    seed=seed,
                    settings=settings,
                    noise_files=noise_files if real_noise else (),
                    overwrite=True,
                )
                synth_seconds = time.perf_counter() - start
                waveforms, labels, _ = load_folder(out_dir, DIGITS)
                for context in args.context:
                    synthetic = pooled_embeddings(embed, waveforms, context)
                    score, per_digit = accuracy(synthetic, labels, real[context], real_labels, args.c)
                    summary.setdefault((name, per_word, context), []).append(score)
                    print(
                        f"{name:28} {per_word:8d} {seed:4d} {context:7.2f} {score:8.1%}  "
                        f"{synth_seconds:7.0f}  " + " ".join(f"{value:.0%}" for value in per_digit),
                        flush=True,
                    )
    print("\nmean over seeds:")
    for (name, per_word, context), scores in summary.items():
        print(
            f"  {name:28} {per_word:5d}/word  context {context:.2f} s  {np.mean(scores):.1%}  "
            f"({len(scores)} seeds)"
        )
    print("\nsettings:")
    for name in args.settings.split(","):
        settings, real_noise = SETTINGS[name]
        changed = {
            field.name: getattr(settings, field.name)
            for field in dataclasses.fields(settings)
            if getattr(settings, field.name) != field.default and field.name != "variants"
        }
        variants = "standard m1-m8 f1-f5" if settings.variants == STANDARD_VARIANTS else "human variants"
        print(
            f"  {name}: {variants}, {changed or 'defaults'}{', real background noise' if real_noise else ''}"
        )


if __name__ == "__main__":
    main()
