"""The gs:// paths through the real google-cloud-storage client against the emulator."""

import os

import pytest

from admod import registry, split, storage
from admod.errors import AdmodError
from tests.conftest import upload_folder
from tests.support.gcs_emulator import PAGE_SIZE
from tests.support.splitting import run_split
from tests.support import splitting


def test_listing_spans_several_pages(bucket):
    names = [f"data/x/{i:03d}.bin" for i in range(3 * PAGE_SIZE + 1)]
    for name in names:
        bucket.blob(name).upload_from_string(b"1234")
    listed = list(storage.list_files(f"gs://{bucket.name}/data"))
    assert [uri for uri, _ in listed] == [f"gs://{bucket.name}/{n}" for n in names]
    assert {size for _, size in listed} == {4}


def test_write_read_exists(bucket):
    uri = f"gs://{bucket.name}/a/b.json"
    assert not storage.exists(uri)
    storage.write_bytes(uri, b'{"x": 1}')
    assert storage.exists(uri) and storage.read_bytes(uri) == b'{"x": 1}'
    assert storage.is_dir(f"gs://{bucket.name}/a") and not storage.is_dir(f"gs://{bucket.name}/z")


def test_missing_bucket_is_one_clear_sentence(gcs_host):
    with pytest.raises(AdmodError, match="'gs://no-such-bucket' does not exist"):
        list(storage.list_files("gs://no-such-bucket/data"))


def test_missing_object(bucket):
    with pytest.raises(AdmodError, match="does not exist"):
        storage.read_bytes(f"gs://{bucket.name}/missing.jpg")


def test_uri_without_bucket():
    with pytest.raises(AdmodError, match="names no bucket"):
        storage.split_gcs("gs:///path")


def test_split_reads_a_bucket_like_a_folder(bucket, demo_root, tmp_path):
    uri = upload_folder(demo_root, bucket, "ads")
    out = {name: str(tmp_path / "gcs" / name) for name in split.SPLITS}
    config = splitting.split_config(val_fraction=0.2, test_fraction=0.0, seed=3, min_image_side=32,
                               max_image_pixels=10**7)
    from_bucket = run_split(uri, out, config)
    out_local = {name: str(tmp_path / "local" / name) for name in split.SPLITS}
    from_folder = run_split(demo_root, out_local, config)
    assert from_bucket["uri"].str.startswith(uri).all()
    assert list(from_bucket["split"]) == list(from_folder["split"])
    assert list(from_bucket["sha256"]) == list(from_folder["sha256"])


def test_missing_prefix_names_the_class_folder(bucket, tmp_path):
    bucket.blob("ads/allowed_ads/a.jpg").upload_from_string(b"x")
    with pytest.raises(AdmodError, match=f"'gs://{bucket.name}/ads/not_allowed_ads' is missing"):
        split.list_images(f"gs://{bucket.name}/ads", str(tmp_path), 1)


def test_registry_on_gcs(bucket, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.keras").write_bytes(os.urandom(1000))
    root = f"gs://{bucket.name}/registry"
    uri, pushed = registry.push(str(model), root, expected_champion=None)
    assert pushed and registry.complete_versions(root) == [uri.rsplit("/", 1)[1]]
    assert registry.champion(root) == uri.rsplit("/", 1)[1]
    assert storage.read_bytes(f"{uri}/model.keras") == (model / "model.keras").read_bytes()
    assert registry.push(str(model), root, None) == (uri, False)  # same model again: no-op


@pytest.mark.parametrize("error, sentence", [("Forbidden", "No permission to access"),
                                             ("Unauthorized", "No permission to access"),
                                             ("NotFound", "does not exist")])
def test_client_errors_become_one_sentence(error, sentence):
    from google.api_core import exceptions

    with pytest.raises(AdmodError, match=sentence):
        with storage._gcs_errors("gs://bucket/data"):
            raise getattr(exceptions, error)("denied")


def test_weights_from_a_gcs_uri(bucket, tmp_path):
    import keras
    import numpy as np

    from admod import model as model_lib

    base = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path / "resnet50_notop.weights.h5"
    base.save_weights(str(path))
    bucket.blob("weights/resnet50_notop.weights.h5").upload_from_filename(str(path))
    model, source = model_lib.build_model(32, f"gs://{bucket.name}/weights/resnet50_notop.weights.h5")
    assert source.startswith("gs://")
    loaded = model.get_layer(model_lib.BASE_NAME).weights
    pairs = zip(base.weights, loaded, strict=True)
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in pairs)


def test_the_fanned_out_merge_reads_its_bucket_of_each_part_from_cloud_storage(
        bucket, demo_root, tmp_path):
    """Checked parts on gs:// (as on Vertex AI or Kubeflow with a gs:// pipeline root): each
    merge-bucket task downloads its bucket of every part and nothing else, and the split is the
    one the same parts give as local folders."""
    config = splitting.split_config(val_fraction=0.2, test_fraction=0.0, seed=3, shard_size=40)
    parts = splitting.checked_parts(demo_root, str(tmp_path / "parts"), config, 2)
    uris = [upload_folder(part, bucket, f"run/check-images/{i}/part")
            for i, part in enumerate(parts)]
    from_bucket = splitting.fanned_out_merge(uris, demo_root, str(tmp_path / "gcs"), config)
    from_folders = splitting.fanned_out_merge(parts, demo_root, str(tmp_path / "local"), config)
    assert from_bucket == from_folders and from_bucket["train_allowed_ads"] > 0
    for path in ["split/manifest.csv", "split/report.md"] + [
            f"bucket-{b:02d}/{n}/{f}" for b in range(split.BUCKETS) for n in split.SPLITS
            for f in os.listdir(tmp_path / "local" / f"bucket-{b:02d}" / n)]:
        assert (tmp_path / "gcs" / path).read_bytes() == (tmp_path / "local" / path).read_bytes()
    bucket, _ = splitting.first_bucket_with_images(parts[0])  # a fixed one was empty 1 run in 3
    folder = split.bucket_folder(parts[0], bucket)
    scratch = tmp_path / "scratch"
    assert split.local_part(uris[0], bucket, str(scratch)) == str(scratch)
    name = os.path.basename(folder)
    assert sorted(os.listdir(scratch)) == [name, split.PART_CENSUS]  # nothing else
    assert sorted(os.listdir(scratch / name)) == sorted(os.listdir(folder))


def test_a_part_on_cloud_storage_without_its_layout_is_refused_by_name(bucket, tmp_path):
    bucket.blob("old/part/manifest.csv").upload_from_string(b"index,uri\n")
    with pytest.raises(AdmodError, match=f"Checked partition 'gs://{bucket.name}/old/part' "
                                         "lacks excluded.csv"):
        split.local_part(f"gs://{bucket.name}/old/part", 0, str(tmp_path / "scratch"))
    assert not (tmp_path / "scratch").exists()


def test_a_rewrite_changes_an_objects_version_and_a_metadata_update_does_not(bucket):
    """The version is the object's generation (its content's), not its metageneration: a
    fingerprint on the metageneration would keep the key when the bytes are overwritten."""
    blob = bucket.blob("data/allowed_ads/a.png")
    blob.upload_from_string(b"one")

    def version():
        ((_, _, found),) = storage.list_file_versions(f"gs://{bucket.name}/data")
        return found

    first = version()
    blob.reload()
    blob.metadata = {"reviewed": "yes"}
    blob.patch()  # the metageneration moves on, the content stays
    assert version() == first
    blob.upload_from_string(b"one")  # the same bytes, written again: a new generation
    assert version() != first
