import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from admod.demo_data import write_demo_data  # noqa: E402


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory):
    """A small demo data set (read-only to the tests that use it)."""
    root = tmp_path_factory.mktemp("demo")
    write_demo_data(str(root), count=60, seed=1, scales=(0.5,))
    return str(root)


@pytest.fixture(scope="session")
def gcs_host():
    """STORAGE_EMULATOR_HOST pointing at a gcp-storage-emulator on 127.0.0.1."""
    from admod import storage
    from tests.gcs_emulator import running_emulator

    with running_emulator() as host:
        previous = os.environ.get("STORAGE_EMULATOR_HOST")
        os.environ["STORAGE_EMULATOR_HOST"] = host
        storage.gcs_client.cache_clear()
        try:
            yield host
        finally:
            if previous is None:
                os.environ.pop("STORAGE_EMULATOR_HOST", None)
            else:
                os.environ["STORAGE_EMULATOR_HOST"] = previous
            storage.gcs_client.cache_clear()


@pytest.fixture
def bucket(gcs_host, request):
    """A fresh, empty bucket named after the test."""
    import re

    from admod import storage

    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:50].strip("-")
    return storage.gcs_client().create_bucket(name)


def upload_folder(folder, bucket, prefix):
    for dirpath, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(dirpath, name)
            bucket.blob(f"{prefix}/{os.path.relpath(path, folder)}").upload_from_filename(path)
    return f"gs://{bucket.name}/{prefix}"
