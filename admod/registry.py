"""A versioned model registry under a local folder or gs:// prefix.

<registry_root>/<version>/...        the files of one version (below)
<registry_root>/<version>/_COMPLETE  written last: a version without it does not exist
<registry_root>/champion.json        the current champion, replaced in one write

A version holds a model folder as the training steps write it (model.keras, model_info.json)
plus what push adds: saved_model/1/ for serving, metrics.json and model_card.md.

Versions are never overwritten: each push gets a new version name, and pushing a model whose
content a complete version already holds is a no-op.
"""

import datetime
import hashlib
import json
import logging
import os
import re
import uuid

from admod import results, storage
from admod.errors import AdmodError
from admod.results import ModelInfo

log = logging.getLogger(__name__)
MARKER = "_COMPLETE"
CHAMPION = "champion.json"
# The files of a model folder and of a registry version
MODEL_FILE = "model.keras"  # the Keras model, for evaluation and further training
MODEL_INFO_FILE = "model_info.json"  # image size, weights source, epochs, threshold...
SAVED_MODEL_DIR = "saved_model"  # the serving export's base path (TF Serving's layout:
SERVING_VERSION = "1"  # the SavedModel itself is in saved_model/1/, as TF Serving and KServe want)
METRICS_FILE = "metrics.json"
MODEL_CARD_FILE = "model_card.md"
# What a push names: its version folders (v<UTC time>-<key>-<random>) and its temporary files
VERSION_NAME = re.compile(r"v\d{8}-\d{6}-[0-9a-f]{8}-[0-9a-f]{6}")
TEMPORARY_NAME = re.compile(r"\.tmp-[A-Za-z0-9_]+")


class ChampionChanged(AdmodError):
    """The champion moved between evaluation and push."""


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


def _pointed_version(registry_root: str, data: bytes, complete: bool = True) -> str:
    """The version a champion pointer's bytes name; an AdmodError naming the repair when the
    pointer is empty, corrupt, points outside the registry or at no complete version."""
    pointer = storage.join(registry_root, CHAMPION)
    repair = (f"repair it with 'admod registry set-champion {registry_root} VERSION' (one of "
              "'admod registry list')")
    try:
        version = json.loads(data)["version"]
    except (ValueError, KeyError, TypeError):
        raise AdmodError(f"The champion pointer '{pointer}' is empty or corrupt: "
                         f"{repair}.") from None
    if not isinstance(version, str) or not version or "/" in version or version.startswith("."):
        raise AdmodError(f"The champion pointer '{pointer}' names {version!r}, which is not a "
                         f"version folder of this registry: {repair}.")
    if complete and not storage.exists(storage.join(registry_root, version, MARKER)):
        raise AdmodError(f"The champion pointer '{pointer}' names version {version}, which is "
                         f"missing or incomplete: {repair}.")
    return version


def champion(registry_root: str) -> str | None:
    """The current champion's version, None before the first push."""
    pointer = storage.join(registry_root, CHAMPION)
    if not storage.exists(pointer):
        return None
    return _pointed_version(registry_root, storage.read_bytes(pointer))


def champion_files(registry_root: str, local_dir: str) -> tuple[str, ModelInfo, str] | None:
    """The current champion's version, model info and its model file downloaded into
    `local_dir` (None before the first push); admod.model.load_champion loads it."""
    version = champion(registry_root)
    if version is None:
        return None
    folder = storage.join(registry_root, version)
    info = results.read(ModelInfo, storage.join(folder, MODEL_INFO_FILE))
    path = storage.download_to_file(storage.join(folder, MODEL_FILE),
                                    os.path.join(local_dir, MODEL_FILE))
    return version, info, path


def serving_model_dir(version_uri: str) -> str:
    """The SavedModel of a version (TF Serving's base path is its parent)."""
    return storage.join(version_uri, SAVED_MODEL_DIR, SERVING_VERSION)


def resolve_version(model: str) -> str:
    """The version folder `model` names: a version itself, or a registry root's champion."""
    if storage.exists(storage.join(model, MARKER)):
        return model
    version = champion(model)
    if version is None:
        raise AdmodError(f"'{model}' is neither a complete model version nor a registry with a "
                         "champion: pass a registry_root or one of its version folders.")
    return storage.join(model, version)


def repair_champion(registry_root: str, version: str) -> None:
    """Points champion.json at the complete `version`, whatever it holds now (the repair)."""
    if version not in complete_versions(registry_root):
        raise AdmodError(f"'{version}' is not a complete version of '{registry_root}': pick one "
                         "of 'admod registry list'.")
    pointer = json.dumps({"version": version, "uri": storage.join(registry_root, version)},
                         indent=2).encode()
    storage.write_bytes(storage.join(registry_root, CHAMPION), pointer)
    log.info("champion is now %s (repaired)", version)


def push(folder: str, registry_root: str, expected_champion: str | None,
         now: datetime.datetime | None = None, key: str | None = None) -> tuple[str, bool]:
    """Publishes the files under local `folder` as a new version and makes it the champion,
    provided the champion is still `expected_champion` (the one it was evaluated against).

    `key` names the model's identity (default: the files' content): a complete version with
    the same key is this model already. Returns (version uri, True); or (that version's uri,
    False), nothing stored again, after making it the champion if a push that died before doing
    so left it short of that. A version is visible only once its marker is written, after every
    other file; a half-written one is never reused.
    """
    key = key or content_key(folder)
    for version in complete_versions(registry_root):
        if read_marker(registry_root, version).get("content_sha256") == key:
            log.info("version %s already holds this model: nothing stored", version)
            if champion(registry_root) != version:
                set_champion(registry_root, version, expected_champion)  # finish that push
            return storage.join(registry_root, version), False
    now = now or datetime.datetime.now(datetime.timezone.utc)
    version = f"v{now:%Y%m%d-%H%M%S}-{key[:8]}-{uuid.uuid4().hex[:6]}"
    target = storage.join(registry_root, version)
    storage.upload_dir(folder, target)
    marker = {"version": version, "content_sha256": key, "completed_at": now.isoformat(),
              "parent": expected_champion}
    storage.write_bytes(storage.join(target, MARKER), json.dumps(marker, indent=2).encode())
    log.info("stored %s", target)
    set_champion(registry_root, version, expected_champion)
    return target, True


def check_registry(registry_root: str) -> None:
    """Refuses, in one sentence, a path that is not a registry a push wrote: missing, or with
    neither a champion pointer nor a version folder (a data set, a home folder...)."""
    if not storage.is_dir(registry_root):
        raise AdmodError(f"Registry '{registry_root}' does not exist: pass the registry_root "
                         "a push wrote (a folder or gs:// prefix).")
    if storage.exists(storage.join(registry_root, CHAMPION)):
        return
    for uri, _ in storage.list_files(registry_root):
        top = uri[len(registry_root.rstrip("/")) + 1:].split("/", 1)[0]
        if VERSION_NAME.fullmatch(top):
            return
    raise AdmodError(f"'{registry_root}' is not an admod registry (no {CHAMPION}, no version "
                     "folder v<date>-<time>-...): pass the registry_root a push wrote.")


def leftovers(registry_root: str, older_than_s: float, now: float | None = None) -> list[str]:
    """What dead pushes left, older than `older_than_s` (a younger one may still be being
    written): folders named as push names versions but without a marker, and files named as
    its interrupted writes name them (.tmp-*). Nothing else, whatever it is, is a leftover."""
    import time

    check_registry(registry_root)
    now = now or time.time()
    complete = set(complete_versions(registry_root))
    newest: dict[str, float] = {}
    for uri, changed in storage.list_files_changed(registry_root):
        relative = uri[len(registry_root.rstrip("/")) + 1:]
        top, _, rest = relative.partition("/")
        if rest and top not in complete and VERSION_NAME.fullmatch(top):
            name = top  # a file of an incomplete version: the whole folder goes
        elif TEMPORARY_NAME.fullmatch(os.path.basename(relative)):
            name = relative  # an interrupted write elsewhere
        else:
            continue
        newest[name] = max(newest.get(name, 0.0), changed)
    return sorted(name for name, t in newest.items() if now - t > older_than_s)


def remove_leftovers(registry_root: str, older_than_s: float, dry_run: bool = False) -> list[str]:
    """Deletes what `leftovers` finds (nothing with `dry_run`); returns their names. Complete
    versions, the champion pointer and anything a push does not name are never touched."""
    stale = leftovers(registry_root, older_than_s)
    for name in [] if dry_run else stale:
        uri = storage.join(registry_root, name)
        if name.rsplit("/", 1)[-1].startswith(".tmp-"):
            storage.remove_file(uri)
        else:
            storage.remove_dir(uri)
        log.info("removed %s, left by a push that did not finish", name)
    return stale


def set_champion(registry_root: str, version: str, expected: str | None) -> None:
    """Points champion.json at `version` in one conditional write, if it still names `expected`."""
    def still_expected(current: bytes | None) -> None:
        found = (_pointed_version(registry_root, current, complete=False)
                 if current is not None else None)
        if found != expected:
            raise storage.Conflict(f"the champion is now {found}, not {expected}")

    pointer = json.dumps({"version": version, "uri": storage.join(registry_root, version)},
                         indent=2).encode()
    try:
        storage.compare_and_swap(storage.join(registry_root, CHAMPION), still_expected, pointer)
    except storage.Conflict as conflict:
        raise ChampionChanged(
            f"Version {version} is stored complete but not made champion: {conflict} since this "
            "model was evaluated; run the pipeline again to evaluate against the new champion."
        ) from None
    log.info("champion is now %s (was %s)", version, expected)
