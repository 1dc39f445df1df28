"""The TFRecord format the split step writes and training reads: one place for both sides.

The split writes and copies records without TensorFlow: a tf.train.Example of four fields is a
few protobuf bytes, and a TFRecord file is each record framed by its length and two masked
CRC-32C checksums (google-crc32c, the C implementation Cloud Storage's client uses). Importing
TensorFlow took a check-images task about 5 s and 700 MiB before its first image
(bench/split.py); the bytes are the ones TensorFlow writes (tested against
tf.train.Example and tf.io.TFRecordWriter). Training parses them with TensorFlow (`parse`).
"""

import glob
import json
import os
import struct
import tempfile

import google_crc32c

from admod.errors import AdmodError

SHARD_PATTERN = "part-*.tfrecord"
INFO_FILE = "info.json"
# What to do about a damaged shard: the step that wrote it is cached, so a plain re-run would
# reuse it.
REWRITE_SHARDS = ("run the pipeline again without reusing cached steps (admod submit "
                  "--no-cache; a local run rewrites them) to rewrite the shards.")


# --- writing (no TensorFlow) ------------------------------------------------------------------

def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _head(number: int, length: int) -> bytes:
    """The tag and length of a length-delimited protobuf field of `length` bytes."""
    return _varint(number << 3 | 2) + _varint(length)


def _field(number: int, parts: list[bytes]) -> list[bytes]:
    """A length-delimited field around `parts`, as parts: the payload is never copied (an
    image's bytes are joined once, into the record)."""
    return [_head(number, sum(map(len, parts))), *parts]


def _bytes_feature(value: bytes) -> list[bytes]:
    return _field(1, _field(1, [value]))  # Feature.bytes_list { value }


def _int64_feature(value: int) -> list[bytes]:
    return _field(3, _field(1, [_varint(value)]))  # Feature.int64_list { value (packed) }


def encode(image: bytes, label: int, sha256: str, uri: str) -> bytes:
    """A serialized tf.train.Example, byte for byte what TensorFlow's deterministic
    serialization gives (map entries in key order): the same bytes in any process."""
    return b"".join(encode_pieces(image, label, sha256, uri))


def encode_pieces(image: bytes, label: int, sha256: str, uri: str) -> list[bytes]:
    """`encode`'s bytes as the pieces they join from, `image` among them uncopied (for
    `ShardWriter.write_pieces`: an image's bytes are copied once, into the file)."""
    features = {"image": _bytes_feature(image), "label": _int64_feature(label),
                "sha256": _bytes_feature(sha256.encode()), "uri": _bytes_feature(uri.encode())}
    entries = [part for key in sorted(features)
               for part in _field(1, _field(1, [key.encode()]) + _field(2, features[key]))]
    return _field(1, entries)  # Example.features { feature: map entries }


def _masked_crc(pieces) -> int:
    crc = 0
    for piece in pieces:
        crc = google_crc32c.extend(crc, piece)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _framing(pieces: list[bytes]) -> tuple[bytes, bytes]:
    """What a TFRecord file holds before the record made of `pieces` (its length and the
    length's checksum) and after it (its checksum)."""
    length = struct.pack("<Q", sum(map(len, pieces)))
    return (length + struct.pack("<I", _masked_crc([length])),
            struct.pack("<I", _masked_crc(pieces)))


class ShardWriter:
    """Writes records into `folder`/<prefix>-NNNNN.tfrecord, `shard_size` records per file
    (the prefix starts with "part" for SHARD_PATTERN)."""

    def __init__(self, folder: str, shard_size: int, prefix: str = "part"):
        self.folder, self.shard_size, self.prefix = folder, shard_size, prefix
        self.count, self._file = 0, None
        os.makedirs(folder, exist_ok=True)

    def write(self, record: bytes) -> None:
        self.write_pieces([record])

    def write_pieces(self, pieces: list[bytes]) -> None:
        """The record made of `pieces` (as `encode_pieces` gives them), never joined in
        memory."""
        before, after = _framing(pieces)
        self._write(before, *pieces, after)

    def write_framed(self, framed: tuple[bytes, bytes, bytes]) -> None:
        """A record already framed (as `iterate(..., framed=True)` gives it): copied as is."""
        self._write(*framed)

    def _write(self, *pieces: bytes) -> None:
        if self.count % self.shard_size == 0:
            self.close()
            path = os.path.join(self.folder,
                                f"{self.prefix}-{self.count // self.shard_size:05d}.tfrecord")
            self._file = open(path, "wb")
        self._file.writelines(pieces)
        self.count += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def shard_counts(self) -> list[int]:
        """The records in each shard written, in shard order."""
        full, rest = divmod(self.count, self.shard_size)
        return [self.shard_size] * full + ([rest] if rest else [])


# --- reading ----------------------------------------------------------------------------------

class CorruptShard(AdmodError):
    """A shard whose framing or checksums do not hold: written by an earlier step that
    admod re-runs, never read as records."""


def _read_frames(path: str, framed: bool):
    with open(path, "rb") as f:
        while header := f.read(12):
            length_bytes, length_crc = header[:8], header[8:]
            if len(header) < 12 or struct.unpack("<I", length_crc)[0] != _masked_crc(
                    [length_bytes]):
                raise CorruptShard(f"Shard '{path}' is corrupt (a record's length fails its "
                                   f"checksum): {REWRITE_SHARDS}")
            record = f.read(struct.unpack("<Q", length_bytes)[0])
            checksum = f.read(4)
            if len(checksum) < 4 or struct.unpack("<I", checksum)[0] != _masked_crc([record]):
                raise CorruptShard(f"Shard '{path}' is corrupt (a record is truncated or fails "
                                   f"its checksum): {REWRITE_SHARDS}")
            yield (header, record, checksum) if framed else record


def iterate(folder: str, framed: bool = False):
    """The serialized records of a local `folder`'s shards, shard by shard, in order, each
    checked against its checksums (no TensorFlow); `framed`: each with its framing, as the
    three pieces (header, record, checksum) for `ShardWriter.write_framed`."""
    for name in shard_names(folder):
        yield from _read_frames(os.path.join(folder, name), framed)


S3_SHARDS_DIR = os.path.join(tempfile.gettempdir(), "admod-s3-shards")


def shard_files(folder: str) -> list[str]:
    """The shards of the split `folder`, as paths TensorFlow reads: those its info.json lists
    where the fanned-out split left them in the merge's folders, else those in it. TensorFlow
    reads local paths and gs:// itself; s3:// and minio:// shards (it has no S3 file system
    since 2.6) are downloaded once into S3_SHARDS_DIR, on the pod's local disk."""
    import tensorflow as tf

    from admod import s3

    listed = read_info(folder).get("shards") if os.path.isfile(
        os.path.join(folder, INFO_FILE)) else None
    if listed is None:
        return sorted(tf.io.gfile.glob(os.path.join(folder, SHARD_PATTERN)))
    remote = [uri for uri in listed if s3.is_s3(uri)]
    local = dict(zip(remote, s3.download_files(remote, S3_SHARDS_DIR), strict=True))
    for missing in (uri for uri in listed if uri not in local and not tf.io.gfile.exists(uri)):
        raise AdmodError(f"Shard '{missing}', which {os.path.join(folder, INFO_FILE)} lists, "
                         f"is missing: {REWRITE_SHARDS}")
    return [local.get(uri, uri) for uri in listed]


def shard_names(folder: str) -> list[str]:
    """The names of the shards in the local `folder`, in order (no TensorFlow)."""
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(folder, SHARD_PATTERN)))


def parse(serialized):
    """A record's tensors, for training (TensorFlow)."""
    import tensorflow as tf

    features = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64),
        "sha256": tf.io.FixedLenFeature([], tf.string),
        "uri": tf.io.FixedLenFeature([], tf.string),
    }
    return tf.io.parse_single_example(serialized, features)


def write_info(folder: str, info: dict) -> None:
    with open(os.path.join(folder, INFO_FILE), "w") as f:
        json.dump(info, f, indent=2)


def read_info(folder: str) -> dict:
    with open(os.path.join(folder, INFO_FILE)) as f:
        return json.load(f)
