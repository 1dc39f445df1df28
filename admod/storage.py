"""One storage seam for local folders, gs:// and s3:// URIs.

gs:// goes through google-cloud-storage: its paginated listing, its default retry policy
(exponential backoff on 429 and 5xx) and its transfer helpers. STORAGE_EMULATOR_HOST is honoured
by the client itself; against an emulator we use anonymous credentials. s3:// (Amazon S3, and
MinIO through AWS_ENDPOINT_URL) goes through boto3: admod.s3.
"""

import contextlib
import functools
import json
import os
import shutil
import stat
import tempfile
from typing import Iterator

from admod import s3
from admod.errors import AdmodError

GCS_SCHEME = "gs://"
SCHEMES = (GCS_SCHEME, s3.SCHEME, s3.MINIO_SCHEME)


def is_gcs(uri: str) -> bool:
    return uri.startswith(GCS_SCHEME)


def is_remote(uri: str) -> bool:
    """An object store's URI (gs://, s3:// or minio://), not a path on this machine."""
    return uri.startswith(SCHEMES)


def is_inside(path: str, root: str) -> bool:
    """Whether `path` is `root` or below it: folders by their real paths (links followed),
    object-store URIs by their prefix; a local path is never inside a URI."""
    if is_remote(path) or is_remote(root):
        return path.rstrip("/") + "/" == root.rstrip("/") + "/" or path.startswith(
            root.rstrip("/") + "/")
    root = os.path.realpath(root)
    return os.path.commonpath([os.path.realpath(path), root]) == root


def split_gcs(uri: str) -> tuple[str, str]:
    """('bucket', 'path/inside') from 'gs://bucket/path/inside'."""
    bucket, _, path = uri[len(GCS_SCHEME):].partition("/")
    if not bucket:
        raise AdmodError(f"'{uri}' names no bucket: write it as gs://BUCKET/PATH.")
    return bucket, path


def join(root: str, *parts: str) -> str:
    if is_remote(root):
        return "/".join([root.rstrip("/"), *(p.strip("/") for p in parts)])
    return os.path.join(root, *parts)


@functools.lru_cache(maxsize=1)
def gcs_client():
    from google.cloud import storage

    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(project="emulator", credentials=AnonymousCredentials())
    return storage.Client()


@contextlib.contextmanager
def _gcs_errors(uri: str):
    """Turns the client's errors into one sentence naming `uri`."""
    import requests
    from google.api_core import exceptions
    from google.auth.exceptions import DefaultCredentialsError

    try:
        yield
    except DefaultCredentialsError as error:
        raise AdmodError(
            f"No Google Cloud credentials to read '{uri}': run 'gcloud auth application-default "
            "login', or set GOOGLE_APPLICATION_CREDENTIALS to a service account key file; on "
            "GKE or Vertex AI, run the pod as a service account with access to the bucket."
        ) from error
    except exceptions.NotFound as error:
        raise AdmodError(f"'{uri}' does not exist: check the bucket and path.") from error
    except (exceptions.Forbidden, exceptions.Unauthorized) as error:
        raise AdmodError(
            f"No permission to access '{uri}': grant this account read and write access "
            "to the bucket (roles/storage.objectAdmin)."
        ) from error
    except (exceptions.RetryError, exceptions.ServerError, exceptions.TooManyRequests,
            requests.exceptions.ConnectionError, requests.exceptions.Timeout) as error:
        reason = str(error).splitlines()[0][:160]
        raise AdmodError(
            f"Cloud Storage did not answer for '{uri}' ({reason}), retries included: check "
            "the network and Cloud Storage's status, then run again."
        ) from error


def _gcs_objects(root: str):
    """(uri, blob) for every object under the gs:// prefix `root`, listed page by page."""
    bucket_name, prefix = split_gcs(root)
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    with _gcs_errors(f"gs://{bucket_name}"):
        for blob in gcs_client().list_blobs(bucket_name, prefix=prefix):
            if not blob.name.endswith("/"):
                yield f"gs://{bucket_name}/{blob.name}", blob


READ_TIMEOUT_S = 60


def list_files(root: str) -> Iterator[tuple[str, int]]:
    """Every file under `root`, recursively, as (uri, size in bytes), in name order."""
    yield from ((uri, size) for uri, size, _ in list_file_versions(root))


def list_file_versions(root: str) -> Iterator[tuple[str, int, str]]:
    """(uri, size, version) of every file under `root`, in the byte order of the full uris
    (as Cloud Storage lists), so that the uri itself orders a listing: the version
    changes whenever the file's content may have (its generation on gs://, else its mtime and
    ctime)."""
    if is_gcs(root):
        yield from ((uri, blob.size or 0, str(blob.generation or ""))
                    for uri, blob in _gcs_objects(root))
    elif s3.is_s3(root):
        yield from s3.file_versions(root)
    else:
        yield from _local_file_versions(root)


def _local_file_versions(folder: bytes | str) -> Iterator[tuple[str, int, str]]:
    # Byte order of the full paths: a folder sorts as its name plus "/" ("a.png" before
    # "a/b.png"). Links to folders are not followed (no loops): they are listed as files. Only
    # the names of one folder are held, as bytes.
    folder = os.fsencode(folder)
    try:
        with os.scandir(folder) as scan:
            names = [e.name + (b"/" if e.is_dir(follow_symlinks=False) else b"") for e in scan]
    except OSError:  # an unreadable folder: listed as one entry ("/" at its end), named so
        yield os.fsdecode(folder) + "/", 0, ""
        return
    names.sort()
    for name in names:
        path = os.path.join(folder, name.rstrip(b"/"))
        if name.endswith(b"/"):
            yield from _local_file_versions(path)
            continue
        try:
            found = os.stat(path)
            # ctime too: no copy tool can set it, so a same-size replacement whose mtime was
            # kept (cp -p, rsync -a, touch -r), or two files swapped between class folders,
            # still changes the version.
            yield os.fsdecode(path), found.st_size, f"{found.st_mtime_ns}:{found.st_ctime_ns}"
        except OSError:  # a dangling symlink, a symlink loop: listed, reading will say
            yield os.fsdecode(path), 0, ""


def top_level_names(root: str) -> list[str]:
    """The names directly under `root` (folders with a trailing "/"), sorted."""
    if is_gcs(root):
        bucket_name, prefix = split_gcs(root)
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        with _gcs_errors(root):
            listing = gcs_client().list_blobs(bucket_name, prefix=prefix, delimiter="/")
            names = [blob.name[len(prefix):] for blob in listing]
            names += [folder[len(prefix):] for folder in listing.prefixes]
        return sorted(n for n in names if n)
    if s3.is_s3(root):
        return s3.top_level_names(root)
    return sorted(name + ("/" if os.path.isdir(os.path.join(root, name)) else "")
                  for name in os.listdir(root))


def list_files_changed(root: str) -> Iterator[tuple[str, float]]:
    """Every file under `root` as (uri, time of its last change, seconds since the epoch)."""
    if is_gcs(root):
        yield from ((uri, blob.updated.timestamp()) for uri, blob in _gcs_objects(root))
        return
    if s3.is_s3(root):
        yield from s3.files_changed(root)
        return
    for uri, _ in list_files(root):
        try:
            yield uri, os.path.getmtime(uri)
        except OSError:
            continue


def _readable_by_umask(path: str, folder: bool) -> None:
    """Gives `path` the mode the umask gives new files and folders (tempfile makes them 0600
    and 0700: a serving account could not read the registry)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if folder else 0o666) & ~umask)


def is_dir(uri: str) -> bool:
    """True when `uri` is a folder, or a gs:// prefix with at least one object under it."""
    if is_gcs(uri):
        bucket_name, prefix = split_gcs(uri)
        with _gcs_errors(f"gs://{bucket_name}"):
            blobs = gcs_client().list_blobs(
                bucket_name, prefix=prefix.rstrip("/") + "/", max_results=1
            )
            return any(True for _ in blobs)
    if s3.is_s3(uri):
        return s3.is_dir(uri)
    return os.path.isdir(uri)


def exists(uri: str) -> bool:
    if is_gcs(uri):
        bucket_name, path = split_gcs(uri)
        with _gcs_errors(uri):
            return gcs_client().bucket(bucket_name).blob(path).exists()
    if s3.is_s3(uri):
        return s3.exists(uri)
    return os.path.exists(uri)


class NotAFile(OSError):
    """A named pipe, socket, device or folder where a file was expected: never read, since
    reading a pipe can wait forever."""


def read_json(uri: str):
    """The JSON value of a file or object (read_bytes' rules)."""
    return json.loads(read_bytes(uri))


def write_json_file(path: str, data) -> None:
    """`data` as indented JSON in a local file (an artifact's path), its folder made."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f, indent=2)


def read_bytes(uri: str) -> bytes:
    """The object's or file's bytes. Each Cloud Storage request gives up after
    READ_TIMEOUT_S (then the client's retries, then one sentence naming the uri); a local
    path that is not a regular file raises NotAFile without blocking."""
    if is_gcs(uri):
        bucket_name, path = split_gcs(uri)
        with _gcs_errors(uri):
            return gcs_client().bucket(bucket_name).blob(path).download_as_bytes(
                timeout=READ_TIMEOUT_S)
    if s3.is_s3(uri):
        return s3.read(uri)[0]
    if not stat.S_ISREG(os.stat(uri).st_mode):
        raise NotAFile(f"'{uri}' is not a regular file (a named pipe, socket, device or "
                       "folder)")
    # O_NONBLOCK: should the file be swapped for a named pipe meanwhile, opening it returns at
    # once instead of waiting for a writer; the check below then refuses it.
    descriptor = os.open(uri, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(descriptor, "rb") as f:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise NotAFile(f"'{uri}' is not a regular file (a named pipe, socket, device or "
                           "folder)")
        return f.read()


def write_bytes(uri: str, data: bytes) -> None:
    """Writes `data` so that readers see the whole object or none of it."""
    if is_gcs(uri):
        from google.cloud.storage.retry import DEFAULT_RETRY

        bucket_name, path = split_gcs(uri)
        with _gcs_errors(uri):
            blob = gcs_client().bucket(bucket_name).blob(path)
            # Our writes are idempotent (same bytes to the same name), so retrying them is safe.
            blob.upload_from_string(data, retry=DEFAULT_RETRY)
        return
    if s3.is_s3(uri):
        s3.write(uri, data)
        return
    folder = os.path.dirname(uri) or "."
    os.makedirs(folder, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, delete=False, prefix=".tmp-") as f:
        f.write(data)
    _readable_by_umask(f.name, folder=False)
    os.replace(f.name, uri)


def upload_dir(local_dir: str, dest: str) -> None:
    """Copies every file under `local_dir` to the prefix or folder `dest`."""
    if s3.is_s3(dest):
        s3.upload_dir(local_dir, dest)
        return
    if not is_gcs(dest):
        shutil.copytree(local_dir, dest, dirs_exist_ok=True, copy_function=shutil.copyfile)
        for folder, _, _ in os.walk(dest):
            _readable_by_umask(folder, folder=True)
        return
    from google.cloud.storage import transfer_manager

    bucket_name, prefix = split_gcs(dest)
    names = [
        os.path.relpath(os.path.join(folder, name), local_dir)
        for folder, _, files in os.walk(local_dir)
        for name in files
    ]
    with _gcs_errors(dest):
        transfer_manager.upload_many_from_filenames(
            gcs_client().bucket(bucket_name),
            names,
            source_directory=local_dir,
            blob_name_prefix=prefix.rstrip("/") + "/",
            raise_exception=True,
        )


def remove_file(uri: str) -> None:
    if is_gcs(uri):
        bucket_name, path = split_gcs(uri)
        with _gcs_errors(uri):
            gcs_client().bucket(bucket_name).blob(path).delete()
        return
    if s3.is_s3(uri):
        s3.remove_file(uri)
        return
    os.remove(uri)


def remove_dir(uri: str) -> None:
    """Deletes the folder or every object under the prefix `uri`; nothing there is fine."""
    if s3.is_s3(uri):
        s3.remove_dir(uri)
        return
    if not is_gcs(uri):
        shutil.rmtree(uri, ignore_errors=True)
        return
    bucket_name, prefix = split_gcs(uri)
    with _gcs_errors(uri):
        bucket = gcs_client().bucket(bucket_name)
        blobs = list(gcs_client().list_blobs(bucket_name, prefix=prefix.rstrip("/") + "/"))
        bucket.delete_blobs(blobs)


def download_to_file(uri: str, local_path: str) -> str:
    """Makes `uri` available as a local file; returns its path (`uri` itself when local)."""
    if not is_remote(uri):
        return uri
    with open(local_path, "wb") as f:
        f.write(read_bytes(uri))
    return local_path


def download_dir(prefix: str, local_dir: str) -> str:
    """Makes the files under `prefix` available in a local folder; returns its path (`prefix`
    itself when local)."""
    if s3.is_s3(prefix):
        s3.download_dir(prefix, local_dir)
        return local_dir
    if not is_gcs(prefix):
        return prefix
    from google.cloud.storage import transfer_manager

    bucket_name, path = split_gcs(prefix)
    path = path.rstrip("/") + "/"
    with _gcs_errors(prefix):
        bucket = gcs_client().bucket(bucket_name)
        blobs = gcs_client().list_blobs(bucket_name, prefix=path)
        names = [blob.name[len(path):] for blob in blobs]
        transfer_manager.download_many_to_path(bucket, names, destination_directory=local_dir,
                                               blob_name_prefix=path, raise_exception=True)
    return local_dir


class Conflict(Exception):
    """Someone else changed the object between our read and our write."""


def compare_and_swap(uri: str, check, data: bytes) -> None:
    """Writes `data` at `uri` only if `check(current bytes or None)` accepts what is there, with
    no other writer in between: a generation precondition on gs://, an ETag condition on s3://,
    a file lock locally. `check` raises Conflict to refuse; a concurrent write also raises
    Conflict."""
    if is_gcs(uri):
        _gcs_compare_and_swap(uri, check, data)
        return
    if s3.is_s3(uri):
        _s3_compare_and_swap(uri, check, data)
        return
    import fcntl

    folder = os.path.dirname(uri) or "."
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "." + os.path.basename(uri) + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        check(read_bytes(uri) if os.path.exists(uri) else None)
        write_bytes(uri, data)


def _gcs_compare_and_swap(uri: str, check, data: bytes) -> None:
    from google.api_core import exceptions

    bucket_name, path = split_gcs(uri)
    with _gcs_errors(uri):
        bucket = gcs_client().bucket(bucket_name)
        blob = bucket.get_blob(path)
        generation = blob.generation if blob is not None else 0  # 0: must not exist yet
        try:
            current = blob.download_as_bytes(if_generation_match=generation) if blob else None
        except exceptions.PreconditionFailed as error:
            raise Conflict(f"'{uri}' changed while we were reading it") from error
        check(current)
        try:
            bucket.blob(path).upload_from_string(data, if_generation_match=generation)
        except exceptions.PreconditionFailed as error:
            # The client retries a write whose reply was lost: our own first write then fails
            # the precondition. Ours is there: that is success, not a conflict.
            written = bucket.get_blob(path)
            if written is None or written.download_as_bytes() != data:
                raise Conflict(f"'{uri}' changed while we were writing it") from error


def _s3_compare_and_swap(uri: str, check, data: bytes) -> None:
    current, etag = s3.read_if_exists(uri)
    check(current)
    try:
        s3.write(uri, data, **({"IfMatch": etag} if etag else {"IfNoneMatch": "*"}))
    except s3.PreconditionFailed as error:
        # boto3 retries a write whose reply was lost: our own first write then fails the
        # condition. Ours is there: that is success, not a conflict.
        if s3.read_if_exists(uri)[0] != data:
            raise Conflict(f"'{uri}' changed while we were writing it") from error
