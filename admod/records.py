"""The TFRecord format the split step writes and training reads: one place for both sides."""

import json
import os

import tensorflow as tf

SHARD_PATTERN = "part-*.tfrecord"
INFO_FILE = "info.json"

FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),  # RGB JPEG bytes
    "label": tf.io.FixedLenFeature([], tf.int64),
    "sha256": tf.io.FixedLenFeature([], tf.string),
    "uri": tf.io.FixedLenFeature([], tf.string),
}


def encode(image: bytes, label: int, sha256: str, uri: str) -> bytes:
    def _bytes(value: bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    example = tf.train.Example(features=tf.train.Features(feature={
        "image": _bytes(image),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
        "sha256": _bytes(sha256.encode()),
        "uri": _bytes(uri.encode()),
    }))
    return example.SerializeToString(deterministic=True)  # the same bytes in any process


def parse(serialized):
    return tf.io.parse_single_example(serialized, FEATURES)


class ShardWriter:
    """Writes records into `folder`/part-NNNNN.tfrecord, `shard_size` records per file."""

    def __init__(self, folder: str, shard_size: int):
        self.folder, self.shard_size = folder, shard_size
        self.count, self._writer = 0, None
        os.makedirs(folder, exist_ok=True)

    def write(self, record: bytes) -> None:
        if self.count % self.shard_size == 0:
            self.close()
            path = os.path.join(self.folder, f"part-{self.count // self.shard_size:05d}.tfrecord")
            self._writer = tf.io.TFRecordWriter(path)
        self._writer.write(record)
        self.count += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def shard_files(folder: str) -> list[str]:
    return sorted(tf.io.gfile.glob(os.path.join(folder, SHARD_PATTERN)))


def iterate(folder: str):
    """The serialized records of `folder`'s shards, shard by shard, in order."""
    files = shard_files(folder)
    if files:
        yield from tf.data.TFRecordDataset(files).as_numpy_iterator()


def write_info(folder: str, info: dict) -> None:
    with open(os.path.join(folder, INFO_FILE), "w") as f:
        json.dump(info, f, indent=2)


def read_info(folder: str) -> dict:
    with open(os.path.join(folder, INFO_FILE)) as f:
        return json.load(f)
