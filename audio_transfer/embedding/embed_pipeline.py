"""Feature extraction as an Apache Beam pipeline: audio files → a feature store (``audio-transfer embed``).

The pipeline, on any Beam runner (the DirectRunner on one machine, Dataflow, Flink, Spark):

1. the launcher lists the examples (a folder of class folders, a CSV/TSV manifest, or a glob on any file
   system Beam reads, e.g. ``gs://bucket/audio/*/*.wav``), gives each a deterministic key (its path relative
   to the data root) and a shard (:func:`~audio_transfer.data.feature_store.shard_of`), and leaves out the
   shards that a previous run completed (:func:`~audio_transfer.data.feature_store.shard_is_complete`), so an
   interrupted run resumes where it stopped;
2. workers decode each file to a clip of the training length (bad files are skipped and listed in their
   shard's sidecar and the manifest, never fatal), batch the clips (``beam.BatchElements``, bounded), and run
   the frozen base, loaded once per worker in ``DoFn.setup``;
3. the records are grouped by shard, sorted by key and each shard is written atomically with its sidecar
   (:func:`~audio_transfer.data.feature_store.write_shard`), so the same inputs always give the same bytes;
4. a final step assembles the manifest from the sidecars
   (:func:`~audio_transfer.data.feature_store.finish_store`).

The store folder may be a URL (``--out gs://bucket/store``): the workers write the shards and the last step
the manifest straight to it through ``tf.io.gfile`` (every worker needs TensorFlow's support of the scheme,
built in for ``gs://``, and credentials to write there), so nothing assumes the launcher's disk.

A plain ``DoFn`` runs the base rather than ``RunInference``: the base is an
:class:`~audio_transfer.bases.AudioBase` (a Keras model, or a hub SavedModel behind one), not a
TensorFlow model file a model handler loads, the context padding and the ``(key, shard)`` bookkeeping must
travel with each clip, and the forward pass must be the one the in-process embedder runs
(:func:`~audio_transfer.embedding.store_embedder.embed_waveforms`) so both paths write equal features.

Apache Beam is an optional dependency (``pip install 'audio_transfer[beam]'``), imported only here.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import posixpath
import re
from collections.abc import Callable, Sequence

from audio_transfer.atomic_files import join_path, remove_file, writable_folder
from audio_transfer.audio import AUDIO_EXTENSIONS
from audio_transfer.bases import load_base
from audio_transfer.bases.audio_base import AudioBase
from audio_transfer.checks import is_number, is_positive_int
from audio_transfer.data import NOISE_LABEL, SkippedFile, is_manifest, load_labelled_audio, parse_speaker
from audio_transfer.data.decoded_clips import clip_samples_for
from audio_transfer.data.feature_store import (
    MANIFEST_NAME,
    FeatureStore,
    is_store,
    shard_is_complete,
    shard_of,
)
from audio_transfer.data.store_identity import StoreIdentity
from audio_transfer.embedding.base_identity import store_identity
from audio_transfer.embedding.store_embedder import embed_waveforms
from audio_transfer.errors import ConfigError, DatasetError, DependencyError
from audio_transfer.tasks import task_class

logger = logging.getLogger(__name__)

# Examples per shard when the number of shards is not given: a shard of 1 s keyword clips embedded by
# speech_embedding is a few MiB, small enough for one worker to sort and write.
DEFAULT_SHARD_EXAMPLES = 2048
DEFAULT_BATCH_SIZE = 64
# Clip length of a task that measures it from its training files (kws): Speech Commands' 1 s clips.
DEFAULT_CLIP_SECONDS = 1.0
_GLOB_CHARACTERS = re.compile(r"[*?\[]")


@dataclasses.dataclass(frozen=True)
class _Example:
    """One input file: its key (the path relative to the data root), file, label and speaker."""

    key: str
    path: str
    label: str
    speaker: str | None


def import_beam():
    """The ``apache_beam`` module; :class:`~audio_transfer.errors.DependencyError` saying what to install."""
    try:
        import apache_beam
    except ImportError as error:
        raise DependencyError(
            f"`audio-transfer embed` runs an Apache Beam pipeline and Beam is not installed ({error}); "
            "install it with: pip install 'audio_transfer[beam]'"
        ) from None
    return apache_beam


def list_examples(
    data: str | os.PathLike, *, keywords: Sequence[str] | None = None, unknown_fraction: float | None = None
) -> tuple[list[_Example], list[SkippedFile]]:
    """The examples of ``data`` sorted by key, and the entries left out while listing (broken links,
    manifest rows naming missing files, a file listed twice).

    Args:
        data: a folder of class folders or a CSV/TSV manifest (local), or a glob any Beam file system
            matches (``gs://bucket/clips/*/*.wav``: the label is each file's folder name).
        keywords: keep these classes and the others relabelled ``_unknown_`` (all, or a seeded sample of
            ``unknown_fraction``), as
            training on the folder with ``keywords`` does (:func:`~audio_transfer.data.load_labelled_audio`);
            folders and manifests only. ``None`` keeps every class.
        unknown_fraction: caps the ``_unknown_`` clips at this share of the keyword clips (with
            ``keywords``); ``None`` keeps them all.

    Raises:
        DatasetError: nothing matches, the folder or manifest holds no labelled audio, or a keyword is
            not one of its classes.
        ConfigError: ``keywords`` with a glob.
    """
    data = os.fspath(data)
    if os.path.isdir(data) or (os.path.isfile(data) and is_manifest(data)):
        labelled = load_labelled_audio(data, keywords=keywords, unknown_fraction=unknown_fraction)
        found = [
            _Example(example.relative_path, os.fspath(example.path), example.label, example.speaker)
            for example in labelled.examples
        ]
        skipped = list(labelled.skipped)
    elif keywords is not None:
        raise ConfigError(
            f"--keywords needs a dataset folder or manifest; {data!r} is a glob. List its files in a "
            "manifest (path,label) or embed every class."
        )
    else:
        found, skipped = _glob_inputs(data), []
    examples: dict[str, _Example] = {}
    for example in sorted(found, key=lambda example: example.key):
        if example.key in examples:
            reason = f"listed again under the key {example.key!r}; the first entry is kept"
            skipped.append(SkippedFile(example.path, reason))
        else:
            examples[example.key] = example
    return list(examples.values()), skipped


def _glob_inputs(pattern: str) -> list[_Example]:
    """The audio files a Beam file-system glob matches, but those of ``_background_noise_`` folders (noise,
    never a class): the key is the path below the glob's fixed folder, the label the file's folder name."""
    from apache_beam.io.filesystems import FileSystems

    wildcard = _GLOB_CHARACTERS.search(pattern)
    if wildcard is None:
        raise DatasetError(
            f"{pattern!r} is neither a dataset folder, a manifest (.csv, .tsv) nor a glob such as "
            "'gs://bucket/clips/*/*.wav'; give one of these."
        )
    root = pattern[: pattern.rfind("/", 0, wildcard.start()) + 1]
    try:
        matched = FileSystems.match([pattern])[0].metadata_list
    except Exception as error:  # Beam raises BeamIOError, ValueError or a file system's own errors
        raise DatasetError(f"Could not list {pattern!r}: {error}") from None
    audio = sorted(
        item.path
        for item in matched
        if item.path.lower().endswith(AUDIO_EXTENSIONS)
        and posixpath.basename(posixpath.dirname(item.path)) != NOISE_LABEL
    )
    if not audio:
        raise DatasetError(
            f"{pattern!r} matches no audio files ({', '.join(AUDIO_EXTENSIONS)}); a glob names the files, "
            "one folder per class: 'gs://bucket/clips/*/*.wav'."
        )
    found = []
    for path in audio:
        key = path[len(root) :] if path.startswith(root) else path
        label = posixpath.basename(posixpath.dirname(path))
        found.append(_Example(key, path, label, parse_speaker(key, label=label)))
    return found


def build_embed_pipeline(
    pipeline,
    *,
    examples: Sequence[tuple[int, _Example]],
    skipped: Sequence[tuple[int, SkippedFile]],
    shards: Sequence[int],
    make_base: Callable[[], AudioBase],
    identity: StoreIdentity,
    out: str,
    num_shards: int,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> None:
    """Add the embedding steps to the Beam ``pipeline``: decode, batch, embed, group by shard, write each of
    ``shards`` (every listed shard, even one left empty), then the manifest.

    Args:
        pipeline: an ``apache_beam.Pipeline``.
        examples: ``(shard, example)`` of the examples to embed (see :func:`list_examples`).
        skipped: ``(shard, SkippedFile)`` left out while listing, recorded in their shards' sidecars.
        shards: the shard indices to write.
        make_base: picklable function returning the frozen base (called once per worker).
        identity: what the store holds (sample rate, clip and context lengths, the base).
        out: the store folder, local or a URL every worker can write (``gs://bucket/store``).
        num_shards: the store's number of shards.
        batch_size: most clips per forward pass.
    """
    beam = import_beam()
    from audio_transfer.embedding import _embed_transforms as transforms

    clip_samples = clip_samples_for(sample_rate=identity.sample_rate, clip_seconds=identity.clip_seconds)
    context_samples = round(identity.context_seconds * identity.sample_rate)
    decoded = (
        pipeline
        | "ListExamples" >> beam.Create(list(examples), reshuffle=False)
        # Spreads the files over the workers (Create hands its elements to one bundle).
        | "Spread" >> beam.Reshuffle()
        | "Decode"
        >> beam.ParDo(
            transforms.DecodeClip(sample_rate=identity.sample_rate, clip_samples=clip_samples)
        ).with_outputs(transforms.SKIPPED, main="clips")
    )
    records = (
        decoded.clips
        # Full batches of `batch_size` (each bundle's last one shorter).
        | "Batch" >> beam.BatchElements(min_batch_size=batch_size, max_batch_size=batch_size)
        | "Embed"
        >> beam.ParDo(
            transforms.EmbedBatch(
                make_base=make_base,
                embed=embed_waveforms,
                context_samples=context_samples,
                source="clean",
                digest=identity.base_digest,
            )
        )
    )
    listing_skipped = pipeline | "ListingSkipped" >> beam.Create(list(skipped), reshuffle=False)
    every_shard = pipeline | "Shards" >> beam.Create([(index, None) for index in shards], reshuffle=False)
    written = (
        {
            "records": records,
            "skipped": (decoded.skipped, listing_skipped) | "AllSkipped" >> beam.Flatten(),
            "shard": every_shard,
        }
        | "GroupByShard" >> beam.CoGroupByKey()
        | "WriteShards" >> beam.Map(transforms.write_grouped_shard, out=out, num_shards=num_shards)
    )
    (
        written
        | "CountRecords" >> beam.CombineGlobally(sum)
        | "WriteManifest" >> beam.Map(transforms.finish, out=out, identity=identity, num_shards=num_shards)
    )


def run_embed_pipeline(
    *,
    data: str | os.PathLike,
    base: str | Callable[[], AudioBase],
    out: str | os.PathLike,
    task: str = "kws",
    keywords: Sequence[str] | None = None,
    unknown_fraction: float | None = None,
    clip_seconds: float | None = None,
    context_seconds: float | None = None,
    num_shards: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    runner: str = "DirectRunner",
    direct_num_workers: int | None = None,
    direct_running_mode: str = "multi_threading",
    beam_args: Sequence[str] = (),
) -> FeatureStore:
    """Embed every clip of ``data`` with the frozen ``base`` into the feature store ``out``, as a Beam
    pipeline on ``runner``; resumes an interrupted run (complete shards are kept) and rewrites nothing a
    finished run wrote (the same inputs give the same shards).

    Args:
        data: a folder of class folders, a CSV/TSV manifest, or a glob on any Beam file system.
        base: a base name for :func:`~audio_transfer.bases.load_base` (a preset, ``hub:<handle>``, a
            ``.keras`` file or SavedModel folder every worker can read), or a picklable function without
            arguments returning the base (workers must be able to import its module).
        out: the store folder: local (on one machine, or a folder every worker mounts) or a URL every
            worker writes through ``tf.io.gfile`` (``gs://bucket/store``; ``s3://`` with tensorflow-io).
        task: the task whose training the store feeds: its clip length and context are the defaults.
        keywords: the classes to spot; the others become ``_unknown_`` (see
            :func:`list_examples`). A store is trained as it is made: ``train STORE`` takes no keywords.
        unknown_fraction: caps the ``_unknown_`` clips at this share of the keyword clips (with
            ``keywords``); ``None`` keeps them all.
        clip_seconds: every clip is centre-cropped or zero-padded to this length (``None``: the task's).
        context_seconds: silence added before and after each clip before the base (``None``: the task's).
        num_shards: shards of the store; ``None``: one per :data:`DEFAULT_SHARD_EXAMPLES` examples. A resumed
            run must use the same number (the default is, for the same inputs).
        batch_size: most clips per forward pass.
        runner: the Beam runner: ``DirectRunner``, ``DataflowRunner``, ``FlinkRunner``...
        direct_num_workers: DirectRunner workers (``None``: Beam's default, one).
        direct_running_mode: the DirectRunner's ``multi_threading`` (its workers share this process's
            TensorFlow, which releases the GIL while it computes), ``multi_processing`` (each worker process
            starts TensorFlow and loads the base: slower on one machine) or ``in_memory``.
        beam_args: more Beam pipeline options, ``["--project=p", "--region=r", "--temp_location=gs://t"]``.

    Returns:
        the finished :class:`~audio_transfer.data.feature_store.FeatureStore`.

    Raises:
        DependencyError: Apache Beam is not installed.
        DatasetError: no audio in ``data``.
        StoreError: ``out`` holds a finished store of another base, sample rate or clip length.
        ConfigError: a setting is out of range.
        OutputError: ``out`` cannot be created or written.

    Example:
        >>> store = run_embed_pipeline(  # doctest: +SKIP
        ...     data="speech_commands", base="speech_embedding", out="sc_store", direct_num_workers=2
        ... )
        >>> store.num_examples  # doctest: +SKIP
        105829
    """
    import_beam()
    from apache_beam.options.pipeline_options import PipelineOptions

    if not is_positive_int(batch_size):
        raise ConfigError(f"batch_size must be a positive integer, received {batch_size!r}.")
    if num_shards is not None and not is_positive_int(num_shards):
        raise ConfigError(f"num_shards must be a positive integer, received {num_shards!r}.")
    out = os.fspath(out)
    clip_seconds, context_seconds = embed_lengths(
        task=task, clip_seconds=clip_seconds, context_seconds=context_seconds
    )
    examples, skipped = list_examples(data, keywords=keywords, unknown_fraction=unknown_fraction)
    writable_folder(out)
    make_base = functools.partial(load_base, base) if isinstance(base, str) else base
    launcher_base = make_base()
    identity = store_identity(
        launcher_base,
        base_name=base if isinstance(base, str) else f"{base.__module__}.{base.__qualname__}",
        sample_rate=launcher_base.sample_rate,
        clip_seconds=clip_seconds,
        context_seconds=context_seconds,
    )
    if num_shards is None:
        num_shards = max(1, math.ceil(len(examples) / DEFAULT_SHARD_EXAMPLES))
    _check_existing_store(out, identity)
    done = {
        index for index in range(num_shards) if shard_is_complete(out, index=index, num_shards=num_shards)
    }
    pending = [
        (shard, example) for example in examples if (shard := shard_of(example.key, num_shards)) not in done
    ]
    logger.info(
        "Embedding %d clips of %s into %d shards of %s (%d complete already) on the %s.",
        len(pending),
        os.fspath(data),
        num_shards,
        out,
        len(done),
        runner,
    )
    direct = (
        {"direct_num_workers": direct_num_workers, "direct_running_mode": direct_running_mode}
        if runner == "DirectRunner" and direct_num_workers is not None
        else {}
    )
    options = PipelineOptions(list(beam_args), runner=runner, **direct)
    beam = import_beam()
    with beam.Pipeline(options=options) as pipeline:
        build_embed_pipeline(
            pipeline,
            examples=pending,
            skipped=[
                (shard, item) for item in skipped if (shard := shard_of(item.path, num_shards)) not in done
            ],
            shards=[index for index in range(num_shards) if index not in done],
            make_base=make_base,
            identity=identity,
            out=out,
            num_shards=num_shards,
            batch_size=batch_size,
        )
    return FeatureStore.open(out, expect=identity)


def embed_lengths(
    *, task: str, clip_seconds: float | None = None, context_seconds: float | None = None
) -> tuple[float, float]:
    """``(clip_seconds, context_seconds)`` of a store for ``task``: those given, else the task's defaults
    (the ``default_clip_seconds`` and ``default_context_seconds`` its training uses; a task that measures its
    clip length from the training files gets :data:`DEFAULT_CLIP_SECONDS`).

    Raises:
        ConfigError: an unknown task, or a length that is not a positive number (context: in [0, 10] s).

    Example:
        >>> embed_lengths(task="kws")
        (1.0, 0.35)
    """
    cls = task_class(task)
    clip = clip_seconds if clip_seconds is not None else cls.default_clip_seconds or DEFAULT_CLIP_SECONDS
    context = cls.default_context_seconds if context_seconds is None else context_seconds
    if not (is_number(clip) and clip > 0):
        raise ConfigError(f"clip_seconds (--clip-seconds) must be a positive number, received {clip!r}.")
    if not (is_number(context) and 0 <= context <= 10):
        raise ConfigError(
            f"context_seconds (--context-seconds) must be between 0 and 10, received {context!r}."
        )
    return float(clip), float(context)


def _check_existing_store(out: str, identity: StoreIdentity) -> None:
    """Refuse a finished store of another identity in ``out``; remove the manifest of a matching one before
    shards are rewritten, so that the folder reads as incomplete until the new manifest is written."""
    if is_store(out):
        FeatureStore.open(out, expect=identity, missing_ok=True)
        remove_file(join_path(out, MANIFEST_NAME))
