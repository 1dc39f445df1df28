"""The split step's logic: list, check, de-duplicate, split and shard the raw images.

The only code that reads the raw data; the source is never written. An image's split depends on
its content (sha256) and the seed alone, so images added between runs never move an existing
image between train and validation.
"""

import collections
import concurrent.futures
import dataclasses
import hashlib
import logging
import os
import time

import pandas as pd

from admod import defaults, images, records, storage
from admod.defaults import CLASS_NAMES
from admod.errors import AdmodError

log = logging.getLogger(__name__)

TRAIN, VALIDATION, TEST = "train", "validation", "test"
SPLITS = (TRAIN, VALIDATION, TEST)
MANIFEST_COLUMNS = ["uri", "label", "size_bytes", "sha256", "width", "height", "format",
                    "split", "reason"]


@dataclasses.dataclass
class SplitConfig:
    val_fraction: float = defaults.VAL_FRACTION
    test_fraction: float = defaults.TEST_FRACTION
    seed: int = defaults.SEED
    min_image_side: int = defaults.MIN_IMAGE_SIDE
    max_image_pixels: int = defaults.MAX_IMAGE_PIXELS
    shard_size: int = 1000
    workers: int = 2 * (os.cpu_count() or 1)

    def validate(self) -> None:
        if not 0 < self.val_fraction < 1:
            raise AdmodError(f"val_fraction={self.val_fraction} is out of range: use a value "
                             "between 0 and 1, such as 0.2.")
        if not 0 <= self.test_fraction < 1 or self.val_fraction + self.test_fraction >= 1:
            raise AdmodError(f"test_fraction={self.test_fraction} is out of range: use 0 or more, "
                             "with val_fraction + test_fraction below 1.")
        if self.min_image_side < 1 or self.max_image_pixels < self.min_image_side ** 2:
            raise AdmodError(f"min_image_side={self.min_image_side} and max_image_pixels="
                             f"{self.max_image_pixels} admit no image: use min_image_side >= 1 "
                             "and max_image_pixels >= min_image_side squared.")


def assign_split(sha256: str, seed: int, val_fraction: float, test_fraction: float) -> str:
    """The split of an image: a pure function of its content and the seed."""
    key = hashlib.sha256(f"{seed}:{sha256}".encode()).digest()
    u = int.from_bytes(key[:8], "big") / 2 ** 64
    if u < test_fraction:
        return TEST
    if u < test_fraction + val_fraction:
        return VALIDATION
    return TRAIN


def list_labelled_files(data_root: str) -> pd.DataFrame:
    """Every file under each class folder: uri, label, size_bytes. Checks the layout."""
    if not storage.is_gcs(data_root) and not os.path.isdir(data_root):
        raise AdmodError(f"Data root '{data_root}' is not a folder: pass a folder or gs:// prefix "
                         f"holding {' and '.join(n + '/' for n in CLASS_NAMES)}.")
    folders = {label: storage.join(data_root, label) for label in CLASS_NAMES}
    for folder in folders.values():
        if not storage.is_dir(folder):
            raise AdmodError(f"Class folder '{folder}' is missing: put the images of each class "
                             f"under {' and '.join(folders.values())}.")
    rows = []
    for label, folder in folders.items():
        files = [(uri, size, label) for uri, size in storage.list_files(folder)]
        if not any(images.has_image_extension(uri) for uri, _, _ in files):
            raise AdmodError(f"Class folder '{folder}' holds no image files (.jpg, .png, .gif, "
                             ".bmp, .webp): add images of that class.")
        rows.extend(files)
    log.info("listed %d files under %s", len(rows), data_root)
    listing = pd.DataFrame(rows, columns=["uri", "size_bytes", "label"], dtype=object)
    return listing.astype({"size_bytes": "int64", "label": "str"})  # uris may not be UTF-8


def _check(uri: str, config: SplitConfig) -> images.CheckedImage:
    if images.printable(uri) != uri:
        return images.CheckedImage(sha256="", reason=images.BAD_FILE_NAME)
    if not images.has_image_extension(uri):
        return images.CheckedImage(sha256="", reason=images.NOT_IMAGE_EXTENSION)
    try:
        data = storage.read_bytes(uri)
    except OSError:  # local files only: gs:// errors are AdmodErrors
        return images.CheckedImage(sha256="", reason=images.UNREADABLE)
    return images.check_image(data, config.min_image_side, config.max_image_pixels)


def _ordered_map(fn, items, workers: int):
    """`map` over a thread pool, results in order, at most 4 x workers in flight (bounded
    memory)."""
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        pending = collections.deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= 4 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


class _Progress:
    def __init__(self, total: int, every_s: float = 10.0):
        self.total, self.every_s, self.start = total, every_s, time.monotonic()
        self.last = self.start

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last < self.every_s and done != self.total:
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        eta = (self.total - done) / rate if rate else float("inf")
        log.info("checked %d/%d files, %.1f files/s, ETA %.0f s", done, self.total, rate, eta)


def run_split(data_root: str, out_dirs: dict[str, str], config: SplitConfig) -> pd.DataFrame:
    """Checks every listed file, writes each usable image once into its split's shards under
    `out_dirs[split]`, and returns the manifest (one row per listed file)."""
    config.validate()
    listing = list_labelled_files(data_root)
    writers = {split: records.ShardWriter(out_dirs[split], config.shard_size)
               for split in SPLITS if split in out_dirs}
    first_label = {}  # sha256 -> label of its first usable occurrence
    manifest = []
    progress = _Progress(len(listing))
    uris = list(listing["uri"])
    checks = _ordered_map(lambda uri: _check(uri, config), uris, config.workers)
    for i, (row, checked) in enumerate(zip(listing.itertuples(), checks, strict=True)):
        entry = {"uri": images.printable(row.uri), "label": row.label, "size_bytes": row.size_bytes,
                 "sha256": checked.sha256, "width": checked.width, "height": checked.height,
                 "format": checked.format, "split": "", "reason": checked.reason}
        if not checked.reason:
            _place(entry, checked, first_label, writers, config)
        manifest.append(entry)
        progress.update(i + 1)
    for writer in writers.values():
        writer.close()
    manifest = pd.DataFrame(manifest, columns=MANIFEST_COLUMNS)
    _exclude_label_conflicts(manifest, out_dirs)
    _check_every_class_in_every_split(manifest, config)
    return manifest


def _place(entry, checked, first_label, writers, config) -> None:
    if checked.sha256 in first_label:
        entry["reason"] = images.DUPLICATE  # same bytes seen before; a conflict is settled later
        return
    first_label[checked.sha256] = entry["label"]
    entry["split"] = assign_split(checked.sha256, config.seed, config.val_fraction,
                                  config.test_fraction)
    label = CLASS_NAMES.index(entry["label"])
    writers[entry["split"]].write(records.encode(checked.data, label, checked.sha256, entry["uri"]))


def _exclude_label_conflicts(manifest: pd.DataFrame, out_dirs: dict[str, str]) -> None:
    """The same bytes under both labels: excluded from every split, every copy reported."""
    hashed = manifest[manifest["sha256"] != ""]
    labels_per_hash = hashed.groupby("sha256")["label"].nunique()
    conflicts = set(labels_per_hash[labels_per_hash > 1].index)
    if not conflicts:
        return
    rows = manifest["sha256"].isin(conflicts)
    for split in manifest.loc[rows & (manifest["split"] != ""), "split"].unique():
        records.drop_records(out_dirs[split], conflicts)
    manifest.loc[rows, "split"] = ""
    manifest.loc[rows, "reason"] = images.LABEL_CONFLICT
    log.warning("%d images are under both labels and were excluded: %s", len(conflicts),
                ", ".join(manifest.loc[rows, "uri"].head(5)))


def _check_every_class_in_every_split(manifest: pd.DataFrame, config: SplitConfig) -> None:
    needed = [TRAIN, VALIDATION] + ([TEST] if config.test_fraction > 0 else [])
    counts = split_counts(manifest)
    for label in CLASS_NAMES:
        for split in needed:
            if counts.loc[label, split] == 0:
                usable = int(counts.loc[label].sum())
                raise AdmodError(
                    f"Class '{label}' has {usable} usable images, too few to put any in "
                    f"{split}: add images of that class (or change val_fraction/test_fraction).")


def split_counts(manifest: pd.DataFrame) -> pd.DataFrame:
    """Images per class (rows) per split (columns)."""
    used = manifest[manifest["split"] != ""]
    table = pd.crosstab(used["label"], used["split"])
    return table.reindex(index=list(CLASS_NAMES), columns=list(SPLITS), fill_value=0)


def exclusion_counts(manifest: pd.DataFrame) -> pd.Series:
    return manifest.loc[manifest["reason"] != "", "reason"].value_counts().sort_index()


def fingerprint(sha256s) -> str:
    """sha256 over the sorted content hashes: the same images give the same fingerprint."""
    return hashlib.sha256("\n".join(sorted(sha256s)).encode()).hexdigest()
