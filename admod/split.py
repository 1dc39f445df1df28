"""The split step's logic: list, check, de-duplicate, split and shard the raw images.

The only code that reads the raw data; the source is never written. An image's split depends on
its content (sha256) and the seed alone, so images added between runs never move an existing
image between train and validation.

It runs in three stages, so that the checking fans out over N tasks (the pipeline's
ParallelFor) or N processes (`admod split --split-workers N`) through the same code:

  list_images      the listing, streamed into N parts (a file goes to the part its name hashes
                   to, so new files change only the parts they land in), with a fingerprint
                   of each part (names, sizes, versions) that a cache can key on
  check_partition  one part: every file checked, usable images written to the part's shards
  merge_parts      duplicates and label conflicts settled across all parts (in SQLite, on
                   disk), the final shards and the manifest written in listing order

No stage holds the listing or the manifest in memory, so memory stays flat as data grows, and
the result is the same for any N: every decision depends on the listing order alone.
"""

import collections
import concurrent.futures
import csv
import dataclasses
import hashlib
import heapq
import logging
import multiprocessing
import os
import sqlite3
import tempfile
import time

import pandas as pd

from admod import images, records, storage
from admod import options as options_lib
from admod.options import ImageRules, SplitOptions
from admod.defaults import CLASS_NAMES
from admod.errors import AdmodError

log = logging.getLogger(__name__)

TRAIN, VALIDATION, TEST = "train", "validation", "test"
SPLITS = (TRAIN, VALIDATION, TEST)
# "index" orders the listing: the uri itself (listings come in uri order), the same for a file
# whatever else is listed, so that a cached partition merges with freshly checked ones.
LISTING_COLUMNS = ["index", "uri", "size_bytes", "label"]
MANIFEST_COLUMNS = ["uri", "label", "size_bytes", "sha256", "width", "height", "format",
                    "split", "reason"]
PART_MANIFEST = "manifest.csv"  # a part's rows: "index" then MANIFEST_COLUMNS
PART_SHARDS = "shards"
REPORTED_URIS = 50  # duplicates and conflicts named in the summary (all are in the manifest)
# File names that are not UTF-8 travel through the CSVs as they are.
ENCODING = {"encoding": "utf-8", "errors": "surrogateescape"}


@dataclasses.dataclass
class SplitSummary:
    """What the split did, without the manifest itself (that is a file)."""
    counts: pd.DataFrame  # images per class (rows) per split (columns)
    exclusions: pd.Series  # files per exclusion reason
    duplicates: list[str]  # the first REPORTED_URIS duplicate uris (kept once)
    conflicts: list[str]  # the first REPORTED_URIS uris under both labels
    listed: int
    fingerprints: dict[str, str]  # per split, and "data" over every used image


def assign_split(sha256: str, seed: int, val_fraction: float, test_fraction: float) -> str:
    """The split of an image: a pure function of its content and the seed."""
    key = hashlib.sha256(f"{seed}:{sha256}".encode()).digest()
    u = int.from_bytes(key[:8], "big") / 2 ** 64
    if u < test_fraction:
        return TEST
    if u < test_fraction + val_fraction:
        return VALIDATION
    return TRAIN


# --- 1. list --------------------------------------------------------------------------------

def partition_of(uri: str, partitions: int) -> int:
    """The listing part a file belongs to: a hash of its name, the same in every run."""
    return int.from_bytes(hashlib.sha256(order_key(uri)).digest()[:8], "big") % partitions


def list_images(data_root: str, listing_dir: str, partitions: int) -> list[str]:
    """Streams every file under each class folder into `partitions` CSV parts under
    `listing_dir` (a file into part `partition_of` its uri, its uri as its place in the
    listing); checks the layout; returns each part's fingerprint (sha256 of its files' names,
    sizes, versions and labels), which changes when and only when the part's files do."""
    options_lib.check("split_workers", partitions)
    if not storage.is_gcs(data_root) and not os.path.isdir(data_root):
        raise AdmodError(f"Data root '{data_root}' is not a folder: pass a folder or gs:// prefix "
                         f"holding {' and '.join(n + '/' for n in CLASS_NAMES)}.")
    folders = {label: storage.join(data_root, label) for label in CLASS_NAMES}
    for folder in folders.values():
        if not storage.is_dir(folder):
            raise AdmodError(f"Class folder '{folder}' is missing: put the images of each class "
                             f"under {' and '.join(folders.values())}.")
    _say_what_is_ignored(data_root)
    os.makedirs(listing_dir, exist_ok=True)
    files = [open(listing_part(listing_dir, i), "w", newline="", **ENCODING)
             for i in range(partitions)]
    writers = [csv.writer(f) for f in files]
    digests = [hashlib.sha256() for _ in range(partitions)]
    for writer in writers:
        writer.writerow(LISTING_COLUMNS)
    listed = 0
    try:
        for label, folder in folders.items():
            with_images = False
            for uri, size, version in storage.list_file_versions(folder):
                part = partition_of(uri, partitions)
                writers[part].writerow([uri, uri, size, label])
                digests[part].update(order_key(f"{uri}\t{size}\t{version}\t{label}\n"))
                with_images |= images.has_image_extension(uri)
                listed += 1
            if not with_images:
                raise AdmodError(f"Class folder '{folder}' holds no image files (.jpg, .png, "
                                 ".gif, .bmp, .webp): add images of that class.")
    finally:
        for f in files:
            f.close()
    log.info("listed %d files under %s into %d part(s)", listed, data_root, partitions)
    return [digest.hexdigest() for digest in digests]


def _say_what_is_ignored(data_root: str) -> None:
    """One log line naming what lies beside the class folders: never read, never silently."""
    ignored = [name for name in storage.top_level_names(data_root)
               if name.rstrip("/") not in CLASS_NAMES]
    if ignored:
        log.warning("ignored %d entr%s beside the class folders under %s (only %s are read): %s",
                    len(ignored), "y" if len(ignored) == 1 else "ies", data_root,
                    " and ".join(n + "/" for n in CLASS_NAMES), ", ".join(ignored[:10]) +
                    (", ..." if len(ignored) > 10 else ""))


def listing_part(listing_dir: str, partition: int) -> str:
    return os.path.join(listing_dir, f"listing-{partition:05d}.csv")


# --- 2. check -------------------------------------------------------------------------------

def check_file(uri: str, rules: ImageRules) -> images.CheckedImage:
    """One file by the split's rules (name, extension, a regular file, readable, an image of a
    kind admod takes, its size): the bytes to use, or the reason it cannot be used. `admod
    predict` applies the same rules."""
    if images.printable(uri) != uri:
        return images.CheckedImage(sha256="", reason=images.BAD_FILE_NAME)
    if uri.endswith("/"):  # a folder that could not be listed
        return images.CheckedImage(sha256="", reason=images.UNREADABLE)
    if not images.has_image_extension(uri):
        return images.CheckedImage(sha256="", reason=images.NOT_IMAGE_EXTENSION)
    try:
        data = storage.read_bytes(uri)
    except storage.NotAFile:
        return images.CheckedImage(sha256="", reason=images.NOT_A_FILE)
    except OSError:  # local files only: gs:// errors are AdmodErrors
        return images.CheckedImage(sha256="", reason=images.UNREADABLE)
    return images.check_image(data, rules.min_image_side, rules.max_image_pixels)


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
    def __init__(self, every_s: float = 10.0):
        self.every_s, self.start = every_s, time.monotonic()
        self.last = self.start

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            log.info("checked %d files, %.1f files/s", done, done / (now - self.start))


def _read_csv_rows(path: str):
    with open(path, newline="", **ENCODING) as f:
        yield from csv.DictReader(f)


def check_partition(listing_file: str, part_dir: str, rules: ImageRules) -> int:
    """Checks every file of one listing part; writes the usable images, in listing order, to
    `part_dir`'s shards and one row per file to its manifest. Returns the files checked."""
    shards = records.ShardWriter(os.path.join(part_dir, PART_SHARDS), rules.shard_size)
    checked_rows = _ordered_map(lambda row: (row, check_file(row["uri"], rules)),
                                _read_csv_rows(listing_file), rules.workers)
    progress, done = _Progress(), 0
    with open(os.path.join(part_dir, PART_MANIFEST), "w", newline="", **ENCODING) as f:
        manifest = csv.writer(f)
        manifest.writerow(["index"] + MANIFEST_COLUMNS)
        for row, checked in checked_rows:
            uri = images.printable(row["uri"])
            if not checked.reason:
                label = CLASS_NAMES.index(row["label"])
                shards.write(records.encode(checked.data, label, checked.sha256, uri))
            manifest.writerow([row["index"], uri, row["label"], row["size_bytes"],
                               checked.sha256, checked.width, checked.height, checked.format,
                               "", checked.reason])
            done += 1
            progress.update(done)
    shards.close()
    log.info("checked %d files of %s", done, os.path.basename(listing_file))
    return done


# --- 3. merge -------------------------------------------------------------------------------

def order_key(uri: str) -> bytes:
    """A file's place in the listing: its uri's bytes (a file name that is not UTF-8 included),
    compared alike by Python and SQLite."""
    return uri.encode("utf-8", "surrogateescape")


def _part_rows(part: int, part_dir: str):
    """(index, part, manifest row, record or None) for each file of a part, in listing order:
    the part's shards hold its usable images in that same order."""
    shard_records = records.iterate(os.path.join(part_dir, PART_SHARDS), framed=True)
    for row in _read_csv_rows(os.path.join(part_dir, PART_MANIFEST)):
        record = next(shard_records) if not row["reason"] else None
        yield order_key(row["index"]), part, row, record


def _load_hashes(db: sqlite3.Connection, part_dirs: list[str]) -> None:
    """Every usable image's (index, sha256, label) into SQLite, and per content hash its first
    occurrence and whether it is under both labels."""
    db.execute("CREATE TABLE usable (idx BLOB PRIMARY KEY, sha256 TEXT, label TEXT)")
    for part_dir in part_dirs:
        rows = _read_csv_rows(os.path.join(part_dir, PART_MANIFEST))
        db.executemany("INSERT INTO usable VALUES (?, ?, ?)",
                       ((order_key(r["index"]), r["sha256"], r["label"]) for r in rows
                        if not r["reason"]))
    db.execute("CREATE TABLE decision AS SELECT sha256, MIN(idx) AS kept, "
               "COUNT(DISTINCT label) > 1 AS conflict FROM usable GROUP BY sha256")
    db.execute("CREATE UNIQUE INDEX decision_sha256 ON decision (sha256)")


def _decisions(db: sqlite3.Connection):
    """(index, kept, conflict) per usable image, in listing order."""
    return db.execute("SELECT u.idx, u.idx = d.kept, d.conflict FROM usable u "
                      "JOIN decision d USING (sha256) ORDER BY u.idx")


def _fingerprints(db: sqlite3.Connection, options: SplitOptions) -> dict[str, str]:
    """Per split and for all ("data"): sha256 over the sorted content hashes used."""
    digests = {name: hashlib.sha256() for name in (*SPLITS, "data")}
    started = dict.fromkeys(digests, False)
    for (sha256,) in db.execute("SELECT sha256 FROM decision WHERE NOT conflict ORDER BY sha256"):
        name = assign_split(sha256, options.seed, options.val_fraction, options.test_fraction)
        for key in (name, "data"):
            digests[key].update((("\n" if started[key] else "") + sha256).encode())
            started[key] = True
    return {name: digest.hexdigest() for name, digest in digests.items()}


def merge_parts(part_dirs: list[str], out_dirs: dict[str, str], manifest_path: str,
                options: SplitOptions) -> SplitSummary:
    """Settles duplicates (the first in listing order is kept) and label conflicts (every
    copy excluded) across the parts; writes each kept image into its split's shards under
    `out_dirs[split]` and the manifest (CSV, one row per listed file, in listing order)."""
    from admod.reports import csv_safe

    writers = {name: records.ShardWriter(out_dirs[name], options.shard_size) for name in SPLITS}
    counts = collections.Counter()
    exclusions = collections.Counter()
    named = {images.DUPLICATE: [], images.LABEL_CONFLICT: []}
    listed = 0
    with tempfile.TemporaryDirectory(prefix="admod-merge-") as tmp, \
            open(manifest_path, "w", newline="", **ENCODING) as out:
        db = sqlite3.connect(os.path.join(tmp, "hashes.sqlite"))
        _load_hashes(db, part_dirs)
        decisions = _decisions(db)
        manifest = csv.DictWriter(out, MANIFEST_COLUMNS, extrasaction="ignore")
        manifest.writeheader()
        rows = heapq.merge(*(_part_rows(i, d) for i, d in enumerate(part_dirs)))
        for index, _, row, record in rows:
            if record is not None:
                _decide(row, index, next(decisions), options)
                if row["split"]:
                    writers[row["split"]].write_framed(record)
                    counts[row["label"], row["split"]] += 1
            if row["reason"]:
                exclusions[row["reason"]] += 1
                if row["reason"] in named and len(named[row["reason"]]) < REPORTED_URIS:
                    named[row["reason"]].append(row["uri"])
            manifest.writerow({**row, "uri": csv_safe(row["uri"])})
            listed += 1
        fingerprints = _fingerprints(db, options)
        db.close()
    for writer in writers.values():
        writer.close()
    summary = SplitSummary(
        counts=_count_table(counts), exclusions=pd.Series(exclusions, dtype="int64").sort_index(),
        duplicates=named[images.DUPLICATE], conflicts=named[images.LABEL_CONFLICT],
        listed=listed, fingerprints=fingerprints)
    _check_every_class_in_every_split(summary.counts, options)
    return summary


def _decide(row: dict, index: bytes, decision: tuple, options: SplitOptions) -> None:
    decided_index, kept, conflict = decision
    assert decided_index == index, (decided_index, index)  # both walk the listing order
    if conflict:
        row["reason"] = images.LABEL_CONFLICT
    elif not kept:
        row["reason"] = images.DUPLICATE
    else:
        row["split"] = assign_split(row["sha256"], options.seed, options.val_fraction,
                                    options.test_fraction)


def _count_table(counts: collections.Counter) -> pd.DataFrame:
    return pd.DataFrame([[counts[label, name] for name in SPLITS] for label in CLASS_NAMES],
                        index=list(CLASS_NAMES), columns=list(SPLITS))


def _check_every_class_in_every_split(counts: pd.DataFrame, options: SplitOptions) -> None:
    needed = [TRAIN, VALIDATION] + ([TEST] if options.test_fraction > 0 else [])
    for label in CLASS_NAMES:
        for name in needed:
            if counts.loc[label, name] == 0:
                usable = int(counts.loc[label].sum())
                raise AdmodError(
                    f"Class '{label}' has {usable} usable images, too few to put any in "
                    f"{name}: add images of that class (or change val_fraction/test_fraction).")


# --- all three, on one machine --------------------------------------------------------------

def run_split(data_root: str, out_dirs: dict[str, str], manifest_path: str,
              options: SplitOptions, rules: ImageRules, partitions: int = 1) -> SplitSummary:
    """list -> check (one process per partition) -> merge, in a scratch folder on local disk.
    The partitions share this machine: each process gets its share of `rules.workers`
    threads (more only contend for the same cores)."""
    rules = dataclasses.replace(rules, workers=max(1, rules.workers // partitions))
    with tempfile.TemporaryDirectory(prefix="admod-split-") as work:
        started = time.monotonic()
        list_images(data_root, os.path.join(work, "listing"), partitions)
        listed = time.monotonic()
        parts = [os.path.join(work, f"part-{i:05d}") for i in range(partitions)]
        listings = [listing_part(os.path.join(work, "listing"), i) for i in range(partitions)]
        if partitions == 1:
            check_partition(listings[0], parts[0], rules)
        else:
            spawn = multiprocessing.get_context("spawn")  # no fork of a process running TF
            with concurrent.futures.ProcessPoolExecutor(partitions, mp_context=spawn) as pool:
                list(pool.map(check_partition, listings, parts, [rules] * partitions))
        checked = time.monotonic()
        summary = merge_parts(parts, out_dirs, manifest_path, options)
        log.info("split stages: list %.1f s, check %.1f s (%d partitions), merge %.1f s",
                 listed - started, checked - listed, partitions, time.monotonic() - checked)
        return summary


def read_manifest(path: str) -> pd.DataFrame:
    """A manifest as a table (for tests and small data: it is the whole file in memory)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False, **{
        "encoding": ENCODING["encoding"], "encoding_errors": ENCODING["errors"]}).astype(
        {"size_bytes": "int64", "width": "int64", "height": "int64"})
