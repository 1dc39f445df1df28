import collections
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from admod.demo_data import write_demo_data  # noqa: E402
from tests.support import kfp_caller  # noqa: E402

kfp_caller.name_callers_cheaply()  # compiling the pipeline in a test: 1 s -> 0.2 s


def pytest_collection_modifyitems(items):
    """The files marked `first(seconds=...)`, the longest first, then the others with the most
    tests first, as pytest-xdist orders files itself (`make test` runs it with
    --no-loadscope-reorder, so that this order holds). Ordered by xdist alone, the longest
    files, having few tests, came last and both onto the worker that asked first: it ran two
    minutes after the other had finished."""
    tests_in = collections.Counter(item.path for item in items)

    def order(item):
        first = item.get_closest_marker("first")
        return (-first.kwargs["seconds"] if first else 0, -tests_in[item.path], str(item.path))

    items.sort(key=order)


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
    from tests.support.gcs_emulator import running_emulator

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


@pytest.fixture(scope="session")
def s3_endpoint():
    """AWS_ENDPOINT_URL pointing at a moto S3 server on 127.0.0.1 (a MinIO-style endpoint:
    path-style requests, static keys), for the s3:// paths through the real boto3 client."""
    import logging

    from moto.server import ThreadedMotoServer

    from admod import s3

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    names = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    previous = {name: os.environ.get(name) for name in names}
    os.environ.update({"AWS_ENDPOINT_URL": f"http://{host}:{port}",
                       "AWS_ACCESS_KEY_ID": "minio", "AWS_SECRET_ACCESS_KEY": "minio123"})
    s3._client.cache_clear()
    try:
        yield f"http://{host}:{port}"
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        s3._client.cache_clear()
        server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint, request):
    """A fresh, empty S3 bucket named after the test; its name."""
    import re

    from admod import s3

    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:50].strip("-")
    s3.client().create_bucket(Bucket=name)
    return name


def upload_folder_s3(folder, bucket, prefix):
    from admod import s3

    for dirpath, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(dirpath, name)
            s3.client().upload_file(path, bucket, f"{prefix}/{os.path.relpath(path, folder)}")
    return f"s3://{bucket}/{prefix}"


@pytest.fixture
def no_s3_credentials(s3_endpoint, monkeypatch, tmp_path):
    """The S3 server reachable but no credentials anywhere boto3 looks (variables, files, the
    instance metadata service)."""
    from admod import s3

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    s3._client.cache_clear()
    yield
    s3._client.cache_clear()
