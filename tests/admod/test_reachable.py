"""The first step reaches the run's stores from the pod before any check or GPU starts
(admod.reachable): each failure is one sentence naming the parameter, and the write probe
leaves nothing behind."""

import os

import pytest

from admod import reachable, storage
from admod.errors import AdmodError


def test_reachable_stores_pass_and_the_probe_leaves_nothing(s3_bucket, tmp_path):
    data = f"s3://{s3_bucket}/ads"
    storage.write_bytes(f"{data}/allowed_ads/a.jpg", b"x")
    registry = tmp_path / "registry"  # a folder admod did not write: a user's file in it
    registry.mkdir()
    (registry / "notes.txt").write_text("mine")
    reachable.check_stores(data, str(registry), f"minio://{s3_bucket}/root/run-1/check")
    assert sorted(os.listdir(registry)) == ["notes.txt"]
    assert [u for u, _ in storage.list_files(f"s3://{s3_bucket}")] == [f"{data}/allowed_ads/a.jpg"]


def test_an_unsupported_scheme_is_named(tmp_path):
    with pytest.raises(AdmodError, match="registry_root='abfs://c/r' is in a store admod cannot "
                                         "reach: use gs://, s3://"):
        reachable.check_stores(str(tmp_path), "abfs://c/r")


def test_an_empty_or_missing_data_root_is_named(s3_bucket, tmp_path):
    with pytest.raises(AdmodError, match=f"data_root 's3://{s3_bucket}/ads' cannot be used: "
                                         f"'s3://{s3_bucket}/ads' holds nothing"):
        reachable.check_stores(f"s3://{s3_bucket}/ads", str(tmp_path))
    with pytest.raises(AdmodError, match="data_root 's3://no-such-bucket/ads' cannot be used: "
                                         "'s3://no-such-bucket/ads' does not exist"):
        reachable.check_stores("s3://no-such-bucket/ads", str(tmp_path))


def test_an_unwritable_pipeline_root_is_named(s3_bucket, tmp_path):
    (tmp_path / "allowed_ads").mkdir()
    with pytest.raises(AdmodError, match="the pipeline root 'minio://gone-bucket/root' cannot be "
                                         "used: 'minio://gone-bucket/root/.admod-write-check-"):
        reachable.check_stores(str(tmp_path), str(tmp_path / "r"), "minio://gone-bucket/root")


def test_missing_credentials_are_named_before_anything_runs(no_s3_credentials, tmp_path):
    with pytest.raises(AdmodError, match="data_root 's3://b/ads' cannot be used: No S3 "
                                         "credentials"):
        reachable.check_stores("s3://b/ads", str(tmp_path))
