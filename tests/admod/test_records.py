"""The split's TFRecords, written without TensorFlow, are the bytes TensorFlow writes."""

import pytest
import tensorflow as tf

from admod import records

CASES = [(b"\xff\xd8\xff" + bytes(range(256)) * 80, 1, "a" * 64, "gs://b/ads/x.jpg"),
         (b"", 0, "", ""),
         (b"\x89PNG", 0, "0" * 64, "/data/caf\u00e9 \u5e7f\u544a.png"),
         (b"x" * 127, 1, "f" * 64, "u" * 128)]


def _tensorflow_example(image, label, sha256, uri) -> bytes:
    def _bytes(value):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    return tf.train.Example(features=tf.train.Features(feature={
        "image": _bytes(image),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
        "sha256": _bytes(sha256.encode()), "uri": _bytes(uri.encode())})).SerializeToString(
            deterministic=True)


@pytest.mark.parametrize("case", CASES, ids=range(len(CASES)))
def test_an_example_is_the_bytes_tensorflow_serializes(case):
    assert records.encode(*case) == _tensorflow_example(*case)
    parsed = records.parse(records.encode(*case))
    assert parsed["image"].numpy() == case[0] and int(parsed["label"]) == case[1]
    assert parsed["uri"].numpy().decode() == case[3]


def test_a_shard_is_the_file_tensorflow_writes_and_reads_back(tmp_path):
    serialized = [records.encode(*case) for case in CASES]
    writer = records.ShardWriter(str(tmp_path / "ours"), shard_size=3)
    for record in serialized:
        writer.write(record)
    writer.close()
    (tmp_path / "theirs").mkdir()
    with tf.io.TFRecordWriter(str(tmp_path / "theirs" / "part-00000.tfrecord")) as theirs:
        for record in serialized[:3]:
            theirs.write(record)
    ours = sorted((tmp_path / "ours").iterdir())
    assert [p.name for p in ours] == ["part-00000.tfrecord", "part-00001.tfrecord"]
    assert ours[0].read_bytes() == (tmp_path / "theirs" / "part-00000.tfrecord").read_bytes()
    read_by_tensorflow = [r.numpy() for r in tf.data.TFRecordDataset(
        records.shard_files(str(tmp_path / "ours")))]
    assert read_by_tensorflow == serialized
    assert list(records.iterate(str(tmp_path / "ours"))) == serialized
    assert list(records.iterate(str(tmp_path / "theirs"))) == serialized[:3]
    copy = records.ShardWriter(str(tmp_path / "copy"), shard_size=3)
    for framed in records.iterate(str(tmp_path / "ours"), framed=True):
        copy.write_framed(framed)
    copy.close()
    assert [p.read_bytes() for p in sorted((tmp_path / "copy").iterdir())] == [
        p.read_bytes() for p in ours]
    pieces = records.ShardWriter(str(tmp_path / "pieces"), shard_size=3)
    for case in CASES:
        pieces.write_pieces(records.encode_pieces(*case))
    pieces.close()
    assert [p.read_bytes() for p in sorted((tmp_path / "pieces").iterdir())] == [
        p.read_bytes() for p in ours]


@pytest.mark.parametrize("damage", ["flip a byte", "truncate"])
def test_a_corrupt_shard_is_refused_never_read_as_records(tmp_path, damage):
    writer = records.ShardWriter(str(tmp_path), shard_size=10)
    for case in CASES:
        writer.write(records.encode(*case))
    writer.close()
    shard = tmp_path / "part-00000.tfrecord"
    data = bytearray(shard.read_bytes())
    if damage == "flip a byte":
        data[100] ^= 0xFF
    else:
        del data[-3:]
    shard.write_bytes(bytes(data))
    with pytest.raises(records.CorruptShard):
        list(records.iterate(str(tmp_path)))
