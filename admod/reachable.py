"""The stores a run needs, reached from the pod before any GPU starts: the data root read, the
registry root and the pipeline root written, a weights file found. A run started from the UI or
the API has passed no command-line check, so its first step does these: an unsupported scheme,
missing credentials or a missing permission end the run there, in one sentence naming the
parameter.
"""

import os
import uuid

from admod import storage
from admod.errors import AdmodError

PROBE_PREFIX = ".admod-write-check-"  # what the probe writes, then deletes: nothing else


def check_stores(data_root: str, registry_root: str, pipeline_root: str = "") -> None:
    """`data_root` listed, `registry_root` and `pipeline_root` (when given) written to."""
    _check_scheme("data_root", data_root)
    _check_scheme("registry_root", registry_root)
    _said("data_root", data_root, lambda: _check_readable(data_root))
    _said("registry_root", registry_root, lambda: _check_writable(registry_root))
    if pipeline_root:
        _said("the pipeline root", pipeline_root, lambda: _check_writable(pipeline_root))


def require_weights_file(weights: str) -> None:
    """Refuses a weights file that does not exist ('imagenet' and 'none' need none), before
    any GPU starts."""
    if weights not in ("imagenet", "none", "") and not storage.exists(weights):
        raise AdmodError(f"Weights file '{weights}' does not exist: pass 'imagenet', 'none' or "
                         "the path or gs:// URI of a ResNet50 no-top weights file.")


def _check_scheme(name: str, uri: str) -> None:
    if "://" in uri and not storage.is_remote(uri):
        raise AdmodError(f"{name}='{uri}' is in a store admod cannot reach: use gs://, s3:// "
                         "(minio:// on Kubeflow) or a folder.")


def _said(name: str, uri: str, check) -> None:
    """Runs `check`, its one sentence prefixed with the parameter it is about."""
    try:
        check()
    except AdmodError as error:
        raise AdmodError(f"{name} '{uri}' cannot be used: {error}") from error


def _check_readable(root: str) -> None:
    if not storage.is_dir(root):
        raise AdmodError(f"'{root}' holds nothing: upload the class folders there, or pass "
                         "the data root they are under.")


def _check_writable(root: str) -> None:
    """Writes a small probe object under `root` and deletes it (that object only)."""
    probe = storage.join(root, PROBE_PREFIX + uuid.uuid4().hex)
    if not storage.is_remote(root):
        os.makedirs(root, exist_ok=True)
    storage.write_bytes(probe, b"admod")
    storage.remove_file(probe)
