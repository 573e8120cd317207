"""The task with its defaults beside the linear probe and beside each fixed head, on few-example scenarios.

Every scenario is rebuilt from a Speech Commands-layout folder and repeated over ``--draws`` random draws;
every test clip is from a speaker no training clip came from (eSpeak: no person at all). Per scenario it
prints each method's mean accuracy over the draws with a 95% interval (Student t over the draws), and
the default's paired difference from the probe. Methods:

- ``default``: :func:`audio_transfer.training.train_run` with the defaults (``head: auto``), what
  ``audio-transfer train`` runs, hold-out rules included;
- ``linear``, ``mlp``: the same with ``head`` fixed;
- ``probe``: the issue's linear probe: each clip decoded at 16 kHz and centred in zeros to at least 1.5 s,
  the frozen base's embeddings over the whole clip pooled as mean and max, ``StandardScaler`` then
  ``LogisticRegression(C=1.0, max_iter=5000)`` (scikit-learn: ``pip install -e '.[bench]'``).

Scenarios: ``words-3`` / ``words-6`` (every word, 3 or 6 clips per word from the first speakers of a
shuffled order; the subset has 10 clips per word, so 10 would leave no unseen speaker to test on),
``digits-3`` (the ten digits, 3 clips each), ``wake-words`` (6 random words, 5 clips each, placed at a
random offset in 3 s of quiet pink noise), ``speakers`` (6 speakers with at least 12 clips, each cut to
its loudest 0.4 s through 8 kHz; 10 training clips per speaker; ``ge2e_speaker``), ``espeak-digits``
(30 of 60 eSpeak NG clips per digit, tested on every real digit clip). ``probe-variants`` (not run by
default) scores the ``words-3`` draws with the probe as this benchmark used to compute it and as the issue
does; ``speaker-verification`` (not run by default) the bare ``ge2e_speaker`` base's EER on every pair of
"utterances" joined from 1, 3 or 5 of a speaker's trimmed clips.

Each scenario's test embeddings are computed once and kept in memory (the tasks' heads run on them);
training clips' clean embeddings are cached on disk across draws. Run from the repository root::

    PYTHONPATH=. nice python benchmarks/bench_task_quality.py $AUDIO_TRANSFER_DATA/speech_commands_subset \\
        [--draws 10] [--scenarios words-3,digits-3]
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from audio_transfer.audio import crop_or_pad, load_audio, resample, save_audio, trim_silence
from audio_transfer.bases import load_base
from audio_transfer.data import AudioExample, decode_examples, load_labelled_audio
from audio_transfer.tasks import SpeakerVerifier
from audio_transfer.training import EmbeddingCache, TrainConfig, train_run, verification_report

SAMPLE_RATE = 16000
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
METHODS = {"default": {}, "linear": {"head": "linear"}, "mlp": {"head": "mlp"}}
PROBE_MIN_SECONDS = 1.5

_pretrained_base = functools.cache(load_base)

Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _wake_word_clip(noise: np.ndarray | None) -> Transform:
    """The clip at a random offset inside 3 s of quiet noise."""

    def place(waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = np.zeros(3 * SAMPLE_RATE, np.float32)
        start = int(rng.integers(0, len(out) - len(waveform) + 1))
        out[start : start + len(waveform)] = waveform
        if noise is not None:
            offset = int(rng.integers(0, len(noise) - len(out)))
            out += noise[offset : offset + len(out)] * 10 ** (rng.uniform(-50, -35) / 20)
        return out

    return place


def _narrowband_excerpt(waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The loudest 0.4 s, through 8 kHz and back (the issue's 8 kHz speaker recordings)."""
    narrow = resample(waveform, orig_sample_rate=SAMPLE_RATE, target_sample_rate=8000)
    length = round(0.4 * 8000)
    energy = np.convolve(narrow**2, np.ones(length), mode="valid")
    start = int(energy.argmax())
    excerpt = narrow[start : start + length]
    return resample(excerpt, orig_sample_rate=8000, target_sample_rate=SAMPLE_RATE).astype(np.float32)


def _write_pool(
    examples: list[AudioExample], transform: Transform | None, folder: Path, *, by_speaker: bool, seed: int
) -> dict[AudioExample, Path]:
    """Each example once in ``folder/<class>/``, transformed, so draws share files (and cached embeddings)."""
    rng = np.random.default_rng(seed)
    pool = {}
    for index, example in enumerate(examples):
        label = example.speaker if by_speaker else example.label
        path = folder / label / f"{example.speaker}_nohash_{index}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        if transform is None:
            path.symlink_to(Path(example.path).resolve())
        else:
            save_audio(
                path,
                transform(load_audio(example.path, sample_rate=SAMPLE_RATE), rng),
                sample_rate=SAMPLE_RATE,
            )
        pool[example] = path
    return pool


def _link(paths: list[Path], folder: Path) -> None:
    for path in paths:
        target = folder / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(path)


def _draw(scenario: str, examples: list[AudioExample], rng: np.random.Generator, shots: int):
    """Training and test examples of one draw, every test speaker absent from training."""
    if scenario == "speakers":
        by_speaker: dict[str, list[AudioExample]] = {}
        for example in examples:
            by_speaker.setdefault(example.speaker, []).append(example)
        speakers = sorted(speaker for speaker, clips in by_speaker.items() if len(clips) >= 12)
        train, test = [], []
        for speaker in rng.choice(speakers, size=min(6, len(speakers)), replace=False):
            clips = [by_speaker[speaker][index] for index in rng.permutation(len(by_speaker[speaker]))]
            train += clips[:10]
            test += clips[10:]
        return train, test
    words = sorted({example.label for example in examples})
    if scenario == "wake-words":
        words = sorted(rng.choice(words, size=min(6, len(words)), replace=False))
    order = {s: rank for rank, s in enumerate(rng.permutation(sorted({e.speaker for e in examples})))}
    train = []
    for word in words:
        clips = sorted((e for e in examples if e.label == word), key=lambda e: order[e.speaker])
        train += clips[:shots]
    speakers = {example.speaker for example in train}
    test = [example for example in examples if example.label in words and example.speaker not in speakers]
    return train, test


class _Scenario:
    """One scenario's pool of files, with its test clips' embeddings and probe features kept in memory."""

    def __init__(self, name: str, data_dir: Path, work: Path, *, seed: int) -> None:
        self.name = name
        self.work = work
        self.task = "speaker-id" if name == "speakers" else "kws"
        self.base = _pretrained_base("ge2e_speaker" if name == "speakers" else "speech_embedding")
        self.cache = EmbeddingCache(self.base)
        self.probe_features: dict[Path, np.ndarray] = {}
        data = load_labelled_audio(data_dir)
        self.examples = [
            e for e in data.examples if name not in ("digits-3", "espeak-digits") or e.label in DIGITS
        ]
        noise_path = data_dir / "_background_noise_" / "pink_noise.wav"
        noise = load_audio(noise_path, sample_rate=SAMPLE_RATE) if noise_path.exists() else None
        transform = {"wake-words": _wake_word_clip(noise), "speakers": _narrowband_excerpt}.get(name)
        self.pool = _write_pool(
            self.examples, transform, work / "pool", by_speaker=name == "speakers", seed=seed
        )
        self.synthetic: list[Path] = []
        if name == "espeak-digits":
            from audio_transfer.synth import synthesize_keywords

            synthesize_keywords(list(DIGITS), out_dir=work / "espeak", per_word=60, seed=seed, overwrite=True)
            self.synthetic = sorted((work / "espeak").glob("*/*.wav"))

    def draw(self, index: int, seed: int) -> tuple[Path, Path]:
        """The training and test folders of draw ``index``."""
        rng = np.random.default_rng([seed, index])
        folder = self.work / f"draw_{index}"
        if self.name == "espeak-digits":
            by_word: dict[str, list[Path]] = {}
            for path in self.synthetic:
                by_word.setdefault(path.parent.name, []).append(path)
            train = [p for paths in by_word.values() for p in rng.choice(paths, size=30, replace=False)]
            _link(train, folder / "train")
            _link([self.pool[e] for e in self.examples], folder / "test")
        else:
            shots = {"words-3": 3, "words-6": 6, "digits-3": 3, "wake-words": 5}.get(self.name, 10)
            train, test = _draw(self.name, self.examples, rng, shots)
            _link([self.pool[e] for e in train], folder / "train")
            _link([self.pool[e] for e in test], folder / "test")
        return folder / "train", folder / "test"

    def task_accuracy(self, run, test_dir: Path) -> float:
        """The trained task's accuracy on the test clips, its head run on their kept embeddings."""
        test = decode_examples(
            load_labelled_audio(test_dir).examples,
            sample_rate=self.base.sample_rate,
            clip_seconds=run.config.clip_seconds,
        )
        keys = [f"{Path(e.path).resolve()}|{run.config.clip_seconds}" for e in test.examples]
        frames = self.cache.embed(np.asarray(run.task.with_context(test.waveforms)), keys=keys)
        predicted = np.argmax(np.asarray(run.task.head(frames)), axis=-1)
        return float(np.mean(np.array(run.task.labels)[predicted] == np.array(test.labels)))

    def _probe_features(self, paths: list[Path]) -> np.ndarray:
        """Mean and max over time of the base's embeddings of each clip centred in zeros to >= 1.5 s."""
        missing = [path for path in paths if path.resolve() not in self.probe_features]
        minimum = max(round(PROBE_MIN_SECONDS * SAMPLE_RATE), self.base.min_samples)
        for path in missing:
            waveform = load_audio(path, sample_rate=SAMPLE_RATE)
            waveform = crop_or_pad(waveform, num_samples=max(len(waveform), minimum))
            frames = np.asarray(self.base(waveform[np.newaxis], training=False))[0]
            self.probe_features[path.resolve()] = np.concatenate([frames.mean(axis=0), frames.max(axis=0)])
        return np.stack([self.probe_features[path.resolve()] for path in paths])

    def probe_accuracy(self, train_dir: Path, test_dir: Path) -> float:
        train, test = load_labelled_audio(train_dir).examples, load_labelled_audio(test_dir).examples
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
        probe.fit(self._probe_features([Path(e.path) for e in train]), [e.label for e in train])
        predicted = probe.predict(self._probe_features([Path(e.path) for e in test]))
        return float(np.mean(predicted == np.array([e.label for e in test])))


def probe_variants(data_dir: Path, work: Path, *, draws: int, seed: int) -> None:
    """The ``words-3`` draws scored by the probe as this benchmark used to compute it and as the issue
    does, one difference at a time: the old one ran the base on the 1 s training clips as they are (3
    windows of 0.775 s) and fitted ``LogisticRegression`` on raw features (no ``StandardScaler``)."""
    scenario = _Scenario("words-3", data_dir, work, seed=seed)
    base = scenario.base

    kept: dict[tuple[Path, float], np.ndarray] = {}

    def features(paths: list[Path], *, seconds: float) -> np.ndarray:
        """Mean and max of the base's embeddings of each clip cut or padded (centred) to ``seconds``."""
        for path in paths:
            if (path, seconds) not in kept:
                waveform = load_audio(path, sample_rate=SAMPLE_RATE)
                clip = crop_or_pad(waveform, num_samples=round(seconds * SAMPLE_RATE))
                frames = np.asarray(base(clip[np.newaxis], training=False))[0]
                kept[path, seconds] = np.concatenate([frames.mean(axis=0), frames.max(axis=0)])
        return np.stack([kept[path, seconds] for path in paths])

    variants = {
        "old: 1 s clip, raw features": (1.0, False),
        "1 s clip, StandardScaler": (1.0, True),
        "centred in 1.5 s, raw features": (1.5, False),
        "issue's: centred in 1.5 s, StandardScaler": (1.5, True),
    }
    scores: dict[str, list[float]] = {name: [] for name in variants}
    for index in range(draws):
        train_dir, test_dir = scenario.draw(index, seed)
        train, test = load_labelled_audio(train_dir).examples, load_labelled_audio(test_dir).examples
        for name, (seconds, scaled) in variants.items():
            steps = [StandardScaler()] if scaled else []
            probe = make_pipeline(*steps, LogisticRegression(C=1.0, max_iter=5000))
            probe.fit(features([Path(e.path) for e in train], seconds=seconds), [e.label for e in train])
            predicted = probe.predict(features([Path(e.path) for e in test], seconds=seconds))
            scores[name].append(float(np.mean(predicted == np.array([e.label for e in test]))))
    print(f"\nprobe variants on words-3, {draws} draws (95% interval)")
    for name, values in scores.items():
        print(f"  {name:<44} {_interval(values)}")


def _trimmed(example: AudioExample) -> np.ndarray:
    return trim_silence(load_audio(example.path, sample_rate=SAMPLE_RATE), sample_rate=SAMPLE_RATE)


def verification_scenario(data_dir: Path) -> None:
    """EER of the bare ``ge2e_speaker`` base on utterances of 1, 3 and 5 joined clips per speaker."""
    verifier = SpeakerVerifier(_pretrained_base("ge2e_speaker"))
    clips_by_speaker: dict[str, list[AudioExample]] = {}
    for example in load_labelled_audio(data_dir).examples:
        clips_by_speaker.setdefault(example.speaker, []).append(example)
    print(f"\n{'clips per utterance':<20} {'EER':>6} {'minDCF':>7} {'speakers':>9} {'trials':>7}")
    for per_utterance in (1, 3, 5):
        utterances, speakers = [], []
        for speaker, examples in sorted(clips_by_speaker.items()):
            for start in range(0, min(len(examples) // per_utterance, 4) * per_utterance, per_utterance):
                parts = examples[start : start + per_utterance]
                utterances.append(np.concatenate([_trimmed(part) for part in parts]))
                speakers.append(speaker)
        counts = {speaker: speakers.count(speaker) for speaker in speakers}
        kept = [index for index, speaker in enumerate(speakers) if counts[speaker] >= 2]
        report = verification_report(
            verifier, [utterances[index] for index in kept], [speakers[index] for index in kept]
        )
        print(
            f"{per_utterance:<20} {report.eer:6.2%} {report.min_dcf:7.3f} "
            f"{len({speakers[index] for index in kept}):>9} {report.num_trials:>7}"
        )


def _interval(values: list[float]) -> str:
    values = np.asarray(values)
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return f"{values.mean():7.2%} ± {half:5.2%}"


def run_scenario(name: str, data_dir: Path, work: Path, *, draws: int, seed: int) -> dict[str, list[float]]:
    scenario = _Scenario(name, data_dir, work, seed=seed)
    scores: dict[str, list[float]] = {method: [] for method in [*METHODS, "probe"]}
    seconds: dict[str, list[float]] = {method: [] for method in METHODS}
    chosen = []
    for index in range(draws):
        train_dir, test_dir = scenario.draw(index, seed)
        for method, overrides in METHODS.items():
            config = TrainConfig(
                task=scenario.task,
                data_dir=str(train_dir),
                cache_dir=str(work / "cache"),
                seed=index,
                **overrides,
            )
            started = time.perf_counter()
            run = train_run(config, verbose=0)
            seconds[method].append(time.perf_counter() - started)
            scores[method].append(scenario.task_accuracy(run, test_dir))
            if method == "default":
                chosen.append(
                    f"{run.config.head}/{run.config.pooling}/{'aug' if run.config.augment else 'clean'}"
                )
        scores["probe"].append(scenario.probe_accuracy(train_dir, test_dir))
        tests = len(load_labelled_audio(test_dir).examples)
        print(
            f"  {name} draw {index}: {tests} test clips; "
            + ", ".join(f"{method} {values[-1]:.1%}" for method, values in scores.items())
            + f"; default chose {chosen[-1]}",
            flush=True,
        )
    print(f"\n{name}: mean accuracy over {draws} draws (95% interval)")
    for method, values in scores.items():
        timing = f"   train {np.mean(seconds[method]):5.1f} s" if method in seconds else ""
        print(f"  {method:<8} {_interval(values)}{timing}")
    difference = [d - p for d, p in zip(scores["default"], scores["probe"], strict=True)]
    print(f"  default - probe {_interval(difference)}")
    counts = {choice: chosen.count(choice) for choice in sorted(set(chosen))}
    print(
        f"  default chose: {', '.join(f'{choice} x{count}' for choice, count in counts.items())}\n",
        flush=True,
    )
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="a Speech Commands-layout folder")
    parser.add_argument("--scenarios", default="words-3,words-6,digits-3,wake-words,speakers,espeak-digits")
    parser.add_argument("--draws", type=int, default=10, help="random draws per scenario (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_task_quality_") as folder:
        for name in args.scenarios.split(","):
            if name == "speaker-verification":
                verification_scenario(args.data_dir)
                continue
            if name == "probe-variants":
                probe_variants(args.data_dir, Path(folder) / name, draws=args.draws, seed=args.seed)
                continue
            results[name] = run_scenario(
                name, args.data_dir, Path(folder) / name, draws=args.draws, seed=args.seed
            )
    if not results:
        return
    print(f"{'scenario':<14}" + "".join(f"{method:>18}" for method in [*METHODS, "probe"]))
    for name, scores in results.items():
        print(f"{name:<14}" + "".join(f"{_interval(values):>18}" for values in scores.values()))


if __name__ == "__main__":
    main()
