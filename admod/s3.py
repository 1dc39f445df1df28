"""s3:// through boto3, for Amazon S3 and for S3-compatible stores such as the MinIO of a stock
Kubeflow Pipelines install, whose artifact URIs read minio://BUCKET/PATH (the KFP launcher's
scheme: backend/src/v2/objectstore, kubeflow/pipelines 2.14.0). The endpoint comes from the
standard AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3); for minio:// without one, the stock
install's in-cluster service, as the launcher does. Credentials come from boto3's chain
(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, which a Kubeflow pod gets from a mounted secret,
or the node's role).

Each request gives up after READ_TIMEOUT_S, then boto3's standard retries (exponential backoff
on throttling, 5xx and dropped connections); its transfer manager does multipart transfers.
Objects appear whole (a PUT is atomic); compare-and-swap uses conditional writes (If-Match,
If-None-Match), which S3 and MinIO enforce.
"""

import concurrent.futures
import contextlib
import functools
import os

from admod.errors import AdmodError

SCHEME = "s3://"
MINIO_SCHEME = "minio://"
MINIO_ENDPOINT = "http://minio-service.kubeflow:9000"  # the stock install's, as the launcher's
READ_TIMEOUT_S = 60
CONNECT_TIMEOUT_S = 10
ATTEMPTS = 5  # boto3's "standard" retry mode: the first try and four retries
TRANSFER_THREADS = 16
LIST_PAGE = 1000  # keys a listing page holds (S3's most)


def is_s3(uri: str) -> bool:
    """s3:// or minio://."""
    return uri.startswith((SCHEME, MINIO_SCHEME))


def _scheme(uri: str) -> str:
    return MINIO_SCHEME if uri.startswith(MINIO_SCHEME) else SCHEME


def split(uri: str) -> tuple[str, str]:
    """('bucket', 'path/inside') from 's3://bucket/path/inside' (or minio://)."""
    scheme = _scheme(uri)
    bucket, _, path = uri[len(scheme):].partition("/")
    if not bucket:
        raise AdmodError(f"'{uri}' names no bucket: write it as {scheme}BUCKET/PATH.")
    return bucket, path


def _endpoint(uri: str) -> str | None:
    configured = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return configured or (MINIO_ENDPOINT if uri.startswith(MINIO_SCHEME) else None)


def client(uri: str = SCHEME):
    """The client for `uri`'s store."""
    return _client(_endpoint(uri))


@functools.lru_cache(maxsize=4)
def _client(endpoint: str | None):
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=CONNECT_TIMEOUT_S, read_timeout=READ_TIMEOUT_S,
                    retries={"mode": "standard", "max_attempts": ATTEMPTS},
                    max_pool_connections=TRANSFER_THREADS,
                    # MinIO and other endpoints of one host: bucket in the path, not the name
                    s3={"addressing_style": "path" if endpoint else "auto"})
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return boto3.session.Session().client("s3", region_name=region, config=config,
                                          endpoint_url=endpoint)


def _code(error) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@contextlib.contextmanager
def errors(uri: str):
    """Turns the client's errors into one sentence naming `uri`."""
    from botocore import exceptions

    try:
        yield
    except exceptions.NoCredentialsError as error:
        raise AdmodError(
            f"No S3 credentials to read '{uri}': set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (on Kubeflow, from the secret admod mounts: README "
            "'Stock Kubeflow (MinIO) and S3'), or run with a role that can read the bucket."
        ) from error
    except exceptions.ClientError as error:
        code = _code(error)
        if code in ("NoSuchKey", "NoSuchBucket", "404", "NotFound"):
            raise AdmodError(f"'{uri}' does not exist: check the bucket and path.") from error
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                    "AllAccessDisabled", "ExpiredToken"):
            raise AdmodError(
                f"No permission to access '{uri}' ({code}): check the access key and give it "
                "read and write access to the bucket (s3:GetObject, s3:PutObject, "
                "s3:ListBucket, s3:DeleteObject).") from error
        raise AdmodError(f"S3 refused a request for '{uri}' ({code}: "
                         f"{str(error).splitlines()[0][:160]}): check the store, then run "
                         "again.") from error
    except (exceptions.EndpointConnectionError, exceptions.ConnectTimeoutError,
            exceptions.ReadTimeoutError, exceptions.ConnectionClosedError) as error:
        raise AdmodError(
            f"S3 did not answer for '{uri}' ({str(error).splitlines()[0][:160]}), retries "
            "included: check AWS_ENDPOINT_URL and the network, then run again.") from error


def _prefix(path: str) -> str:
    return path.rstrip("/") + "/" if path else ""


def objects(root: str, delimiter: str = ""):
    """The listing pages' entries under the s3:// prefix `root`: (kind, entry), kind "object"
    for a dict of Key, Size, ETag, LastModified, or "folder" for a common prefix (with a
    delimiter)."""
    bucket, path = split(root)
    with errors(root):
        pages = client(root).get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=_prefix(path), Delimiter=delimiter,
            PaginationConfig={"PageSize": LIST_PAGE})
        for page in pages:
            for entry in page.get("Contents", []):
                if not entry["Key"].endswith("/"):
                    yield "object", entry
            for entry in page.get("CommonPrefixes", []):
                yield "folder", entry


def file_versions(root: str):
    """(uri, size, version) of every object under `root`, in key order (S3 lists in UTF-8 byte
    order): the version is the ETag (the content's digest) and the time of the last write, so
    that any rewrite changes it."""
    base = _scheme(root) + split(root)[0]
    for _, entry in objects(root):
        version = f"{entry['ETag'].strip(chr(34))}:{entry['LastModified'].isoformat()}"
        yield f"{base}/{entry['Key']}", entry["Size"], version


def files_changed(root: str):
    base = _scheme(root) + split(root)[0]
    for _, entry in objects(root):
        yield f"{base}/{entry['Key']}", entry["LastModified"].timestamp()


def top_level_names(root: str) -> list[str]:
    _, path = split(root)
    start = len(_prefix(path))
    return sorted(entry["Key" if kind == "object" else "Prefix"][start:]
                  for kind, entry in objects(root, delimiter="/"))


def is_dir(uri: str) -> bool:
    bucket, path = split(uri)
    with errors(uri):
        found = client(uri).list_objects_v2(Bucket=bucket, Prefix=_prefix(path), MaxKeys=1)
    return found.get("KeyCount", 0) > 0


def exists(uri: str) -> bool:
    from botocore import exceptions

    bucket, path = split(uri)
    with errors(uri):
        try:
            client(uri).head_object(Bucket=bucket, Key=path)
        except exceptions.ClientError as error:
            if _code(error) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
    return True


def read(uri: str) -> tuple[bytes, str]:
    """The object's bytes and ETag."""
    bucket, path = split(uri)
    with errors(uri):
        found = client(uri).get_object(Bucket=bucket, Key=path)
        return found["Body"].read(), found["ETag"]


def read_if_exists(uri: str) -> tuple[bytes | None, str | None]:
    """`read`, or (None, None) when there is no such object."""
    from botocore import exceptions

    bucket, path = split(uri)
    with errors(uri):
        try:
            found = client(uri).get_object(Bucket=bucket, Key=path)
        except exceptions.ClientError as error:
            if _code(error) in ("NoSuchKey", "404"):
                return None, None
            raise
        return found["Body"].read(), found["ETag"]


class PreconditionFailed(Exception):
    """A conditional write found another object than the one its condition named."""


def write(uri: str, data: bytes, **condition) -> None:
    """One PUT (atomic: readers see the whole object or none); `condition`: IfMatch=ETag or
    IfNoneMatch="*", raising PreconditionFailed when the object is not as it says."""
    from botocore import exceptions

    bucket, path = split(uri)
    with errors(uri):
        try:
            client(uri).put_object(Bucket=bucket, Key=path, Body=data, **condition)
        except exceptions.ClientError as error:
            # 409 ConditionalRequestConflict: another conditional write to the key in flight
            if _code(error) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise PreconditionFailed(f"'{uri}' changed") from error
            raise


def remove_file(uri: str) -> None:
    bucket, path = split(uri)
    with errors(uri):
        client(uri).delete_object(Bucket=bucket, Key=path)


def remove_dir(uri: str) -> None:
    """Every object under the prefix `uri`, in batches of 1,000 (the API's limit)."""
    bucket, _ = split(uri)
    keys = [{"Key": entry["Key"]} for _, entry in objects(uri)]
    with errors(uri):
        for start in range(0, len(keys), 1000):
            client(uri).delete_objects(Bucket=bucket, Delete={"Objects": keys[start:start + 1000],
                                                           "Quiet": True})


def upload_dir(local_dir: str, dest: str) -> None:
    """Every file under `local_dir` to the prefix `dest`, TRANSFER_THREADS at a time (boto3's
    transfer manager: multipart for large files)."""
    bucket, path = split(dest)
    names = [os.path.relpath(os.path.join(folder, name), local_dir)
             for folder, _, files in os.walk(local_dir) for name in files]
    with errors(dest):
        _in_threads(lambda name: client(dest).upload_file(
            os.path.join(local_dir, name), bucket, _prefix(path) + name.replace(os.sep, "/")),
            names)


def download_dir(prefix: str, local_dir: str) -> None:
    bucket, path = split(prefix)
    start = len(_prefix(path))

    def download(key: str) -> None:
        target = os.path.join(local_dir, *key[start:].split("/"))
        if not os.path.abspath(target).startswith(os.path.abspath(local_dir) + os.sep):
            raise AdmodError(f"Object '{_scheme(prefix)}{bucket}/{key}' would be written outside "
                             f"'{local_dir}': rename it (no '..' in its key).")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        client(prefix).download_file(bucket, key, target)

    keys = [entry["Key"] for _, entry in objects(prefix)]
    with errors(prefix):
        _in_threads(download, keys)


def download_files(uris: list[str], local_dir: str) -> list[str]:
    """Each object of `uris` as a local file under `local_dir` (named by a digest of its uri,
    so that two runs' shards never meet), downloaded TRANSFER_THREADS at a time unless there
    already (artifacts are written once); returns the paths, in order."""
    import hashlib

    os.makedirs(local_dir, exist_ok=True)
    paths = [os.path.join(local_dir, hashlib.sha256(uri.encode()).hexdigest()[:16] + "-"
                          + uri.rsplit("/", 1)[-1]) for uri in uris]

    def download(pair) -> None:
        uri, path = pair
        if not os.path.exists(path):
            bucket, key = split(uri)
            with errors(uri):
                client(uri).download_file(bucket, key, path + ".part")
            os.replace(path + ".part", path)  # complete, or not there

    _in_threads(download, list(zip(uris, paths, strict=True)))
    return paths


def _in_threads(fn, items) -> None:
    with concurrent.futures.ThreadPoolExecutor(TRANSFER_THREADS) as pool:
        for _ in pool.map(fn, items):
            pass
