"""The s3:// and minio:// paths through the real boto3 client against a real S3 HTTP server
(moto on 127.0.0.1, reached as a MinIO-style endpoint through AWS_ENDPOINT_URL): listing,
fingerprints, reads and writes, the registry's conditional writes, the fanned-out split reading
parts from the store, and training's shards."""

import os

import pytest

from admod import registry, s3, split, storage
from admod.errors import AdmodError
from tests.support import splitting
from tests.conftest import upload_folder_s3


def test_listing_spans_several_pages_in_key_order(s3_bucket, monkeypatch):
    monkeypatch.setattr(s3, "LIST_PAGE", 10)  # S3's pages hold 1,000 keys: the same, smaller
    names = [f"data/x/{i:04d}.bin" for i in range(31)]
    for name in names:
        s3.client().put_object(Bucket=s3_bucket, Key=name, Body=b"1234")
    listed = list(storage.list_files(f"s3://{s3_bucket}/data"))
    assert [uri for uri, _ in listed] == [f"s3://{s3_bucket}/{n}" for n in names]
    assert {size for _, size in listed} == {4}


def test_write_read_exists_remove(s3_bucket):
    uri = f"s3://{s3_bucket}/a/b.json"
    assert not storage.exists(uri)
    storage.write_bytes(uri, b'{"x": 1}')
    assert storage.exists(uri) and storage.read_bytes(uri) == b'{"x": 1}'
    assert storage.is_dir(f"s3://{s3_bucket}/a") and not storage.is_dir(f"s3://{s3_bucket}/z")
    assert storage.top_level_names(f"s3://{s3_bucket}") == ["a/"]
    storage.remove_dir(f"s3://{s3_bucket}/a")
    assert not storage.exists(uri)


def test_minio_uris_are_the_same_objects(s3_bucket):
    """A stock Kubeflow install names its artifacts minio://BUCKET/PATH."""
    storage.write_bytes(f"s3://{s3_bucket}/run/x.txt", b"x")
    assert storage.read_bytes(f"minio://{s3_bucket}/run/x.txt") == b"x"
    assert [u for u, _ in storage.list_files(f"minio://{s3_bucket}/run")] == [
        f"minio://{s3_bucket}/run/x.txt"]


def test_a_rewrite_changes_the_version_and_a_label_swap_the_keys(s3_bucket):
    root = f"s3://{s3_bucket}/ads"
    storage.write_bytes(f"{root}/allowed_ads/a.png", b"A" * 10)
    storage.write_bytes(f"{root}/not_allowed_ads/b.png", b"B" * 10)
    before = {uri: version for uri, _, version in storage.list_file_versions(root)}
    storage.write_bytes(f"{root}/allowed_ads/a.png", b"B" * 10)  # same size, swapped contents
    storage.write_bytes(f"{root}/not_allowed_ads/b.png", b"A" * 10)
    after = {uri: version for uri, _, version in storage.list_file_versions(root)}
    assert before.keys() == after.keys()
    assert all(before[uri] != after[uri] for uri in before)


def test_missing_bucket_object_and_bucketless_uri_are_one_sentence(s3_endpoint):
    with pytest.raises(AdmodError, match="'s3://no-such-bucket/data' does not exist"):
        list(storage.list_files("s3://no-such-bucket/data"))
    with pytest.raises(AdmodError, match="names no bucket"):
        storage.read_bytes("s3:///path")


def test_a_missing_object_is_one_sentence(s3_bucket):
    with pytest.raises(AdmodError, match=f"'s3://{s3_bucket}/missing.jpg' does not exist"):
        storage.read_bytes(f"s3://{s3_bucket}/missing.jpg")


@pytest.mark.parametrize("code, sentence", [("AccessDenied", "No permission to access"),
                                            ("InvalidAccessKeyId", "No permission to access"),
                                            ("NoSuchKey", "does not exist"),
                                            ("SlowDown", "S3 refused a request")])
def test_client_errors_become_one_sentence(code, sentence):
    from botocore.exceptions import ClientError

    with pytest.raises(AdmodError, match=sentence):
        with s3.errors("s3://bucket/data"):
            raise ClientError({"Error": {"Code": code, "Message": "no"}}, "GetObject")


def test_no_credentials_is_one_sentence(no_s3_credentials):
    with pytest.raises(AdmodError, match="No S3 credentials to read 's3://b/x'"):
        storage.read_bytes("s3://b/x")


def test_an_unreachable_endpoint_is_one_sentence(monkeypatch):
    import socket

    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    monkeypatch.setattr(s3, "ATTEMPTS", 1)
    s3._client.cache_clear()
    try:
        with pytest.raises(AdmodError, match="S3 did not answer for 's3://b/x'"):
            storage.read_bytes("s3://b/x")
    finally:
        s3._client.cache_clear()


def test_compare_and_swap_refuses_a_write_that_came_in_between(s3_bucket):
    """The conditional write is what stops a lost update: another writer changes the object
    after our read (inside `check`), and our write is refused, the other's kept."""
    uri = f"s3://{s3_bucket}/registry/champion.json"
    storage.compare_and_swap(uri, lambda current: None, b"first")  # If-None-Match: *

    def another_writer_meanwhile(current):
        assert current == b"first"
        storage.write_bytes(uri, b"theirs")

    with pytest.raises(storage.Conflict):
        storage.compare_and_swap(uri, another_writer_meanwhile, b"ours")
    assert storage.read_bytes(uri) == b"theirs"
    with pytest.raises(storage.Conflict):  # created by someone else after we saw none
        storage.compare_and_swap(f"s3://{s3_bucket}/new.json",
                                 lambda current: storage.write_bytes(
                                     f"s3://{s3_bucket}/new.json", b"theirs"), b"ours")


def test_compare_and_swap_takes_its_own_retried_write_as_success(s3_bucket, monkeypatch):
    """boto3 retries a PUT whose reply was lost: the retry fails its condition against our own
    first write, which is there: success."""
    uri = f"s3://{s3_bucket}/champion.json"
    real_write = s3.write

    def write_then_lose_the_reply(target, data, **condition):
        real_write(target, data, **condition)
        real_write(target, data, **condition)  # the retry: fails If-None-Match

    monkeypatch.setattr(s3, "write", write_then_lose_the_reply)
    storage.compare_and_swap(uri, lambda current: None, b"ours")
    assert storage.read_bytes(uri) == b"ours"


def test_registry_push_and_champion_on_s3(s3_bucket, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.keras").write_bytes(os.urandom(1000))
    root = f"s3://{s3_bucket}/registry"
    uri, pushed = registry.push(str(model), root, expected_champion=None)
    assert pushed and registry.complete_versions(root) == [uri.rsplit("/", 1)[1]]
    assert registry.champion(root) == uri.rsplit("/", 1)[1]
    assert storage.read_bytes(f"{uri}/model.keras") == (model / "model.keras").read_bytes()
    assert registry.push(str(model), root, None) == (uri, False)  # same model again: no-op


def test_split_reads_a_bucket_like_a_folder(s3_bucket, demo_root, tmp_path):
    uri = upload_folder_s3(demo_root, s3_bucket, "ads")
    config = splitting.split_config(val_fraction=0.2, test_fraction=0.0, seed=3,
                                    min_image_side=32, max_image_pixels=10**7)
    from_bucket = splitting.run_split(
        uri, {name: str(tmp_path / "s3" / name) for name in split.SPLITS}, config)
    from_folder = splitting.run_split(
        demo_root, {name: str(tmp_path / "local" / name) for name in split.SPLITS}, config)
    assert from_bucket["uri"].str.startswith(uri).all()
    assert list(from_bucket["split"]) == list(from_folder["split"])
    assert list(from_bucket["sha256"]) == list(from_folder["sha256"])


def test_the_fanned_out_split_and_training_read_parts_and_shards_from_s3(
        s3_bucket, demo_root, tmp_path, monkeypatch):
    """Checked parts on minio:// (a stock Kubeflow's pipeline root): each merge-bucket task
    downloads its bucket of every part, the split is the one local folders give, and training
    reads shards whose info.json lists them on the store."""
    from admod import datasets, records

    config = splitting.split_config(val_fraction=0.2, test_fraction=0.0, seed=3, shard_size=40)
    parts = splitting.checked_parts(demo_root, str(tmp_path / "parts"), config, 2)
    uris = [upload_folder_s3(part, s3_bucket, f"run/check-images/{i}/part").replace(
        "s3://", "minio://") for i, part in enumerate(parts)]
    from_store = splitting.fanned_out_merge(uris, demo_root, str(tmp_path / "s3"), config)
    from_folders = splitting.fanned_out_merge(parts, demo_root, str(tmp_path / "local"), config)
    assert from_store == from_folders and from_store["train_allowed_ads"] > 0
    bucket, _ = splitting.first_bucket_with_images(parts[0])  # a fixed one was empty 1 run in 3
    scratch = tmp_path / "scratch"
    assert split.local_part(uris[0], bucket, str(scratch)) == str(scratch)
    name = os.path.basename(split.bucket_folder(parts[0], bucket))
    assert sorted(os.listdir(scratch)) == [name, split.PART_CENSUS]  # nothing else

    # training's side: the shards on the store, info.json listing their minio:// uris
    train = tmp_path / "local" / "split" / split.TRAIN
    info = records.read_info(str(train))
    shard_uris = []
    for path in info["shards"]:
        key = "run/merge/" + os.path.relpath(path, tmp_path / "local")
        s3.client().upload_file(path, s3_bucket, key)
        shard_uris.append(f"minio://{s3_bucket}/{key}")
    on_store = tmp_path / "train-on-store"
    on_store.mkdir()
    records.write_info(str(on_store), {**info, "shards": shard_uris})
    monkeypatch.setattr(records, "S3_SHARDS_DIR", str(tmp_path / "shards"))
    assert datasets.labels_and_uris(str(on_store)) == datasets.labels_and_uris(str(train))
    assert len(os.listdir(tmp_path / "shards")) == len(shard_uris)


def test_admod_split_reads_an_s3_data_root(s3_bucket, demo_root, tmp_path):
    from admod.pipeline import cli

    uri = upload_folder_s3(demo_root, s3_bucket, "ads")
    assert cli.main(["split", "--data", uri, "--out", str(tmp_path / "out"),
                     "--min-image-side", "32"]) == 0
    manifest = split.read_manifest(str(tmp_path / "out" / "manifest.csv"))
    assert manifest["uri"].str.startswith(f"{uri}/").all() and (manifest["split"] != "").any()
