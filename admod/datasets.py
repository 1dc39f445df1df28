"""tf.data input pipelines over the split step's shards.

read shards -> parse + decode + resize (parallel) -> cache uint8 images -> shuffle -> batch ->
augment (training only, after the cache) -> prefetch.

Images leave here as RGB floats in 0..255: `resnet50.preprocess_input` is a layer of the model
(admod.model), so training, evaluation and serving share it.
"""

import contextlib
import logging
import os

import tensorflow as tf

from admod.options import AugmentOptions
from admod import augment, decoding, records, resources

log = logging.getLogger(__name__)
AUTOTUNE = tf.data.AUTOTUNE
# Cache in memory when the decoded images fit in this share of the container's memory limit.
MEMORY_CACHE_SHARE = 0.5


def decode_and_resize(image_bytes, image_size: int, max_pixels: int | None = None):
    """uint8 RGB [image_size, image_size, 3] from JPEG, PNG, GIF or BMP bytes, through the one
    decode path (admod.decoding); the serving signature calls this too, with `max_pixels`."""
    image = decoding.decode_rgb(image_bytes, max_pixels)
    image = tf.image.resize(image, [image_size, image_size], antialias=True)
    return tf.cast(tf.round(tf.clip_by_value(image, 0, 255)), tf.uint8)


# Not converted by AutoGraph: the decode path has no Python control flow over tensors (it uses
# tf.cond, tf.case and tf.while_loop), and converting it costs each process a second.
@tf.autograph.experimental.do_not_convert
def _parse(serialized, image_size: int):
    example = records.parse(serialized)
    return decode_and_resize(example["image"], image_size), example["label"]


def cache_file(count: int, image_size: int, cache_dir: str | None) -> str:
    """'' (memory) when the decoded images fit the container's memory limit, else a file
    under `cache_dir`, which should be local disk (never an artifact path such as /gcs/...)."""
    needed = count * image_size * image_size * 3
    if needed <= MEMORY_CACHE_SHARE * resources.memory_limit() or not cache_dir:
        return ""
    os.makedirs(cache_dir, exist_ok=True)
    log.info("decoded images need %.1f GiB: caching to %s", needed / 2**30, cache_dir)
    return os.path.join(cache_dir, "images")


def make_dataset(folder: str, image_size: int, batch_size: int, training: bool,
                 augment_config: AugmentOptions | None = None, seed: int | None = None,
                 cache_dir: str | None = None, drop_remainder: bool = False) -> tf.data.Dataset:
    """Batches of (RGB float images 0..255, float labels) from the shards in `folder`;
    `drop_remainder` leaves out the last, short batch (a different one each epoch when
    training: the shuffle comes first)."""
    count = records.read_info(folder)["count"]
    files = records.shard_files(folder)
    # Sequential reads outside training, so the order matches labels_and_uris.
    ds = tf.data.TFRecordDataset(files, num_parallel_reads=AUTOTUNE if training else None)
    ds = ds.map(lambda s: _parse(s, image_size), num_parallel_calls=AUTOTUNE,
                deterministic=not training)
    # The split step counted the records: telling tf.data lets Keras show steps per epoch.
    ds = ds.apply(tf.data.experimental.assert_cardinality(count))
    ds = ds.cache(cache_file(count, image_size, cache_dir))
    if training:
        ds = ds.shuffle(min(count, 10_000), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), tf.cast(y, tf.float32)),
                num_parallel_calls=AUTOTUNE)
    if training and augment_config is not None:
        # One seed per batch, drawn afresh every epoch (a new iterator re-randomises), the
        # same sequence for the same `seed`.
        batch_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip(ds, batch_seeds).map(
            lambda batch, batch_seed: (augment.augment_batch(batch[0], augment_config, batch_seed),
                                       batch[1]),
            num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


# What TensorFlow raises mid-epoch for a damaged shard, none naming it: a record that fails its
# checksum; fewer records than info.json counts (a shard cut cleanly, emptied or deleted).
DAMAGED_SHARD = (tf.errors.DataLossError, tf.errors.FailedPreconditionError,
                 tf.errors.NotFoundError)


@contextlib.contextmanager
def damaged_shards_named(*folders: str):
    """Turns TensorFlow's error for a damaged shard into one sentence naming the shard: every
    shard of `folders` is read through and counted against what the split wrote."""
    from admod.errors import AdmodError

    try:
        yield
    except DAMAGED_SHARD as error:
        for folder in folders:
            if problem := _shard_problem(folder):
                raise AdmodError(f"{problem}: {records.REWRITE_SHARDS}") from None
        if not isinstance(error, tf.errors.DataLossError):
            raise  # not a shard's: every shard holds what the split wrote
        raise AdmodError(f"A shard under {', '.join(folders)} is corrupt ({_first_line(error)}): "
                         f"{records.REWRITE_SHARDS}") from None


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0][:200]


def _shard_problem(folder: str) -> str | None:
    """What is wrong with the first damaged shard of `folder`, or None."""
    files = records.shard_files(folder)  # names a listed shard that is missing
    info = records.read_info(folder)
    written = info.get("shard_records")
    if written is not None and len(written) != len(files):
        return (f"'{folder}' holds {len(files)} shards where the split wrote {len(written)}, "
                "so one was deleted")
    counts = []
    for path in files:
        try:
            counts.append(sum(1 for _ in tf.data.TFRecordDataset(path)))
        except tf.errors.DataLossError as error:
            return f"Shard '{path}' is corrupt ({_first_line(error)})"
    for path, count, expected in zip(files, counts, written or counts, strict=True):
        if count != expected:
            return f"Shard '{path}' holds {count} records where the split wrote {expected}"
    if sum(counts) != info["count"]:
        return (f"The shards of '{folder}' hold {sum(counts)} records where its "
                f"{records.INFO_FILE} counts {info['count']}")
    return None


def labels_and_uris(folder: str) -> tuple[list[int], list[str]]:
    """The labels and source uris of `folder`'s records, in the order make_dataset yields them
    when not training."""
    labels, uris = [], []
    for serialized in tf.data.TFRecordDataset(records.shard_files(folder)):
        example = records.parse(serialized)
        labels.append(int(example["label"]))
        uris.append(example["uri"].numpy().decode())
    return labels, uris


def image_bytes_at(folder: str, indices: set[int]) -> dict[int, bytes]:
    """The stored image bytes of the records at `indices`, in make_dataset's evaluation order."""
    found = {}
    for i, serialized in enumerate(tf.data.TFRecordDataset(records.shard_files(folder))):
        if i in indices:
            found[i] = records.parse(serialized)["image"].numpy()
    return found
