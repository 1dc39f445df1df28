"""A versioned model registry under a local folder or gs:// prefix.

<registry_root>/<version>/...        the files of one version
<registry_root>/<version>/_COMPLETE  written last: a version without it does not exist
<registry_root>/champion.json        the current champion, replaced in one write

Versions are never overwritten: each push gets a new version name, and pushing a model whose
content a complete version already holds is a no-op.
"""

import datetime
import hashlib
import json
import logging
import os

from admod import storage
from admod.errors import AdmodError

log = logging.getLogger(__name__)
MARKER = "_COMPLETE"
CHAMPION = "champion.json"


def content_key(folder: str) -> str:
    """sha256 over the names and bytes of every file under `folder`."""
    digest = hashlib.sha256()
    for path, _ in storage.list_files(folder):
        digest.update(os.path.relpath(path, folder).encode())
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def complete_versions(registry_root: str) -> list[str]:
    """Names of the versions whose marker exists, oldest first."""
    if not storage.is_dir(registry_root):
        return []
    versions = set()
    for uri, _ in storage.list_files(registry_root):
        parent, name = uri.rstrip("/").rsplit("/", 2)[-2:]
        if name == MARKER:
            versions.add(parent)
    return sorted(versions)


def read_marker(registry_root: str, version: str) -> dict:
    return json.loads(storage.read_bytes(storage.join(registry_root, version, MARKER)))


def champion(registry_root: str) -> str | None:
    pointer = storage.join(registry_root, CHAMPION)
    if not storage.exists(pointer):
        return None
    return json.loads(storage.read_bytes(pointer))["version"]


def push(folder: str, registry_root: str, now: datetime.datetime | None = None) -> tuple[str, bool]:
    """Publishes the files under local `folder` as a new version and makes it the champion.

    Returns (version uri, True) or, when a complete version already holds the same content,
    (that version's uri, False).
    """
    key = content_key(folder)
    for version in complete_versions(registry_root):
        if read_marker(registry_root, version).get("content_sha256") == key:
            log.info("version %s already holds this model: nothing pushed", version)
            return storage.join(registry_root, version), False
    now = now or datetime.datetime.now(datetime.timezone.utc)
    version = f"v{now:%Y%m%d-%H%M%S}-{key[:8]}"
    target = storage.join(registry_root, version)
    if storage.is_dir(target):
        raise AdmodError(f"Version '{target}' exists already and is never overwritten: push again.")
    storage.upload_dir(folder, target)
    marker = {"version": version, "content_sha256": key, "completed_at": now.isoformat()}
    storage.write_bytes(storage.join(target, MARKER), json.dumps(marker, indent=2).encode())
    storage.write_bytes(storage.join(registry_root, CHAMPION),
                        json.dumps({"version": version, "uri": target}, indent=2).encode())
    log.info("pushed %s", target)
    return target, True
