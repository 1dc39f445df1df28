"""The split step's logic: list, check, de-duplicate, split and shard the raw images.

The only code that reads the raw data; the source is never written. An image's split depends on
its content (sha256) and the seed alone, so images added between runs never move an existing
image between train and validation.

It runs in three stages, so that the checking fans out over N tasks (the pipeline's
ParallelFor) or N processes (`admod split --split-workers N`) through the same code:

  list_images      the listing, streamed into N parts (a file goes to the part its name hashes
                   to, so new files change only the parts they land in), with a fingerprint
                   of each part (names, sizes, versions) that a cache can key on
  check_partition  one part: every file checked, each usable image written into one of BUCKETS
                   buckets by its content hash's prefix (its shards and rows)
  merge_parts      one merge per bucket, in parallel (merge_bucket): duplicates and label
                   conflicts settled (in SQLite, on disk) and the bucket's images written to
                   the final shards; then the manifest, in listing order, from the buckets'

A duplicate's copies, and a label conflict's, have one content hash, so they land in one bucket
whichever parts listed them: each bucket settles its images alone. No stage holds the listing or
the manifest in memory, so memory stays flat as data grows, and the result is the same for any
N and any number of merge processes: every decision depends on the listing order alone.
"""

import collections
import concurrent.futures
import contextlib
import csv
import dataclasses
import hashlib
import heapq
import json
import logging
import multiprocessing
import os
import sqlite3
import tempfile
import time
from typing import TYPE_CHECKING

from admod import images, interrupts, near_copies, records, storage
from admod import options as options_lib
from admod.options import ImageRules, SplitOptions
from admod.defaults import CLASS_NAMES, SPLIT_BUCKETS
from admod.errors import AdmodError, writes_into

if TYPE_CHECKING:  # imported where used: a check or merge process never needs pandas (0.4 s)
    import pandas as pd

log = logging.getLogger(__name__)

TRAIN, VALIDATION, TEST = "train", "validation", "test"
SPLITS = (TRAIN, VALIDATION, TEST)
# "index" orders the listing: the uri itself (listings come in uri order), the same for a file
# whatever else is listed, so that a cached partition merges with freshly checked ones.
LISTING_COLUMNS = ["index", "uri", "size_bytes", "label"]
MANIFEST_COLUMNS = ["uri", "label", "size_bytes", "sha256", "width", "height", "format",
                    "split", "reason", "near_copy_key"]
# A checked part: the files the check excluded, and per bucket its usable images' rows (both
# "index" then MANIFEST_COLUMNS, in listing order) and their records in the same order.
PART_EXCLUDED = "excluded.csv"
BUCKET_MANIFEST = "manifest.csv"
# A checked part's census, written last: the files it listed and checked, and the usable images
# it put in each bucket, which every later stage reconciles against what it reads.
PART_CENSUS = "census.json"
# A checked part's usable images' (sha256, near-copy key, uri): what grouping near-copies reads.
PART_KEYS = "near_copy_keys.csv"
KEY_COLUMNS = ["sha256", "near_copy_key", "uri"]
BUCKETS = SPLIT_BUCKETS
# Below this much checked data, starting merge processes costs what they save (bench/split.py
# --merge-processes on the 2-core VM: 780 MiB/s in one process; two gained nothing on 1.1 GiB
# and 1.3 times on 2.3 GiB).
PARALLEL_MERGE_BYTES = 2**30
MERGE_REASONS = (images.DUPLICATE, images.LABEL_CONFLICT)  # the exclusions only a merge sees
REPORTED_URIS = 50  # duplicates and conflicts named in the summary (all are in the manifest)
# File names that are not UTF-8 travel through the CSVs as they are.
ENCODING = {"encoding": "utf-8", "errors": "surrogateescape"}


@dataclasses.dataclass
class SplitSummary:
    """What the split did, without the manifest itself (that is a file)."""
    counts: "pd.DataFrame"  # images per class (rows) per split (columns)
    exclusions: "pd.Series"  # files per exclusion reason
    duplicates: list[str]  # the first REPORTED_URIS duplicate uris (kept once)
    conflicts: list[str]  # the first REPORTED_URIS uris under both labels
    listed: int
    fingerprints: dict[str, str]  # per split, and "data" over every used image
    reconciled: dict[str, int] = dataclasses.field(default_factory=dict)  # `reconcile`'s
    near_copy_groups: list[list[str]] = dataclasses.field(default_factory=list)  # their uris
    shard_records: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)


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


def _near_miss(data_root: str, label: str) -> str:
    """', though there is 'Allowed_Ads' (names are case-sensitive)' for a local folder that
    differs from `label` only in case; else ''."""
    if storage.is_remote(data_root):
        return ""
    misses = [name for name in os.listdir(data_root)
              if name.lower() == label and name != label]
    return f", though there is '{misses[0]}' (names are case-sensitive)" if misses else ""


def list_images(data_root: str, listing_dir: str, partitions: int) -> list[str]:
    """Streams every file under each class folder into `partitions` CSV parts under
    `listing_dir` (a file into part `partition_of` its uri, its uri as its place in the
    listing); checks the layout; returns each part's fingerprint (sha256 of its files' names,
    sizes, versions and labels), which changes when and only when the part's files do."""
    options_lib.require_valid({"split_workers": partitions})
    if not storage.is_remote(data_root) and not os.path.isdir(data_root):
        raise AdmodError(f"Data root '{data_root}' is not a folder: pass a folder or gs:// prefix "
                         f"holding {' and '.join(n + '/' for n in CLASS_NAMES)}.")
    folders = {label: storage.join(data_root, label) for label in CLASS_NAMES}
    for label, folder in folders.items():
        if not storage.is_dir(folder):
            raise AdmodError(f"Class folder '{folder}' is missing{_near_miss(data_root, label)}:"
                             f" put the images of each class under "
                             f"{' and '.join(folders.values())}.")
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


def bucket_of(sha256: str) -> int:
    """The bucket of an image: its content hash's prefix, as a range (bucket b holds the
    hashes below those of bucket b + 1)."""
    return int(sha256[:8], 16) * BUCKETS >> 32


def bucket_folder(part_dir: str, bucket: int) -> str:
    return os.path.join(part_dir, f"bucket-{bucket:02d}")


class _PartWriter:
    """A part's outputs: the excluded rows, and each bucket's rows and records, opened as the
    first row of each arrives. A usable image's record is written at once; its row waits for
    its near-copy key, computed for KEY_BATCH images at a time (admod.near_copies.keys_of)."""

    KEY_BATCH = 64  # grey samples of SAMPLE_SIDE^2 bytes held: about 0.6 MB

    def __init__(self, part_dir: str, shard_size: int):
        self.part_dir, self.shard_size = part_dir, shard_size
        os.makedirs(part_dir, exist_ok=True)
        self.files, self.manifests, self.shards = [], {}, {}
        self.excluded = self._manifest(os.path.join(part_dir, PART_EXCLUDED))
        self.files.append(open(os.path.join(part_dir, PART_KEYS), "w", newline="", **ENCODING))
        self.keys = csv.writer(self.files[-1])
        self.keys.writerow(KEY_COLUMNS)
        self.counts = collections.Counter()  # "excluded", and usable images per bucket
        self.waiting: list[tuple[int, str, list, bytes]] = []  # (bucket, sha256, row, sample)

    def _manifest(self, path: str):
        self.files.append(open(path, "w", newline="", **ENCODING))
        writer = csv.writer(self.files[-1])
        writer.writerow(["index"] + MANIFEST_COLUMNS)
        return writer

    def write(self, row: list, record: list[bytes] | None, sha256: str,
              sample: bytes = b"") -> None:
        """An excluded file's `row`, or a usable image's `row` (its key, the last column, from
        its grey `sample`) and `record`."""
        if record is None:
            self.excluded.writerow(row)
            self.counts["excluded"] += 1
            return
        bucket = bucket_of(sha256)
        self.counts[f"{bucket:02d}"] += 1
        if bucket not in self.manifests:
            folder = bucket_folder(self.part_dir, bucket)
            self.shards[bucket] = records.ShardWriter(folder, self.shard_size)
            self.manifests[bucket] = self._manifest(os.path.join(folder, BUCKET_MANIFEST))
        self.shards[bucket].write_pieces(record)
        self.waiting.append((bucket, sha256, row, sample))
        if len(self.waiting) == self.KEY_BATCH:
            self.write_waiting_rows()

    def write_waiting_rows(self) -> None:
        """The waiting rows, in the order their records were written, with their keys."""
        keys = near_copies.keys_of([sample for *_, sample in self.waiting])
        for (bucket, sha256, row, _), key in zip(self.waiting, keys, strict=True):
            row[-1] = key
            self.keys.writerow([sha256, key, row[1]])
            self.manifests[bucket].writerow(row)
        self.waiting = []

    def close(self) -> None:
        for f in self.files:
            f.close()
        for shards in self.shards.values():
            shards.close()

    def write_census(self, listed: int, checked: int) -> None:
        """The census, once the part is complete: what a merge must find in it."""
        buckets = {name: n for name, n in sorted(self.counts.items()) if name != "excluded"}
        with open(os.path.join(self.part_dir, PART_CENSUS), "w") as f:
            json.dump({"listed": listed, "checked": checked,
                       "excluded": self.counts["excluded"], "buckets": buckets}, f)


def check_partition(listing_file: str, part_dir: str, rules: ImageRules) -> int:
    """Checks every file of one listing part; writes each usable image into its bucket under
    `part_dir` (a row and a record, in listing order) and each excluded file's row beside them.
    Returns the files checked."""
    with writes_into(part_dir):
        return _check_partition(listing_file, part_dir, rules)


def _check_partition(listing_file: str, part_dir: str, rules: ImageRules) -> int:
    part = _PartWriter(part_dir, rules.shard_size)
    listed = collections.Counter()

    def listing():
        for row in _read_csv_rows(listing_file):
            listed["rows"] += 1
            yield row

    checked_rows = _ordered_map(lambda row: (row, check_file(row["uri"], rules)), listing(),
                                rules.workers)
    progress, done = _Progress(), 0
    try:
        for row, checked in checked_rows:
            uri = images.printable(row["uri"])
            record = None
            if not checked.reason:
                label = CLASS_NAMES.index(row["label"])
                record = records.encode_pieces(checked.data, label, checked.sha256, uri)
            part.write([row["index"], uri, row["label"], row["size_bytes"], checked.sha256,
                        checked.width, checked.height, checked.format, "", checked.reason, ""],
                       record, checked.sha256, checked.near_copy_sample)
            done += 1
            progress.update(done)
        part.write_waiting_rows()
    finally:
        part.close()
    if listed["rows"] != done:
        raise AdmodError(f"Listing part '{listing_file}' lists {listed['rows']} files but "
                         f"{done} were checked: run the step again.")
    part.write_census(listed["rows"], done)
    log.info("checked %d files of %s", done, os.path.basename(listing_file))
    return done


def read_census(part_dir: str) -> dict:
    """A checked part's census (`PART_CENSUS`); a part without one is not complete."""
    try:
        with open(os.path.join(part_dir, PART_CENSUS)) as f:
            return json.load(f)
    except FileNotFoundError:
        raise _not_a_part(part_dir) from None


# --- 3. merge -------------------------------------------------------------------------------

def order_key(uri: str) -> bytes:
    """A file's place in the listing: its uri's bytes (a file name that is not UTF-8 included),
    compared alike by Python and SQLite."""
    return uri.encode("utf-8", "surrogateescape")


@dataclasses.dataclass
class BucketSummary:
    """What one bucket's merge decided (small: sent back from a merge process)."""
    counts: collections.Counter  # (label, split) -> images
    exclusions: collections.Counter  # reason -> files
    named: dict[str, list[tuple[bytes, str]]]  # reason -> its first (index, uri)s
    hash_digests: dict[str, str]  # per split and "data": sha256 over the sorted hashes used
    merged: int = 0  # the usable images read from the parts
    shard_records: dict[str, list[int]] = dataclasses.field(default_factory=dict)  # per split

    def to_json(self) -> dict:
        """As JSON values: what a merge-bucket task passes to the split's last task."""
        return {"counts": [[label, name, n] for (label, name), n in self.counts.items()],
                "exclusions": dict(self.exclusions),
                "named": {reason: [[index.decode(**ENCODING), uri] for index, uri in named]
                          for reason, named in self.named.items()},
                "hash_digests": self.hash_digests, "merged": self.merged,
                "shard_records": self.shard_records}

    @classmethod
    def from_json(cls, value: dict) -> "BucketSummary":
        return cls(collections.Counter({(label, name): n for label, name, n in value["counts"]}),
                   collections.Counter(value["exclusions"]),
                   {reason: [(order_key(index), uri) for index, uri in named]
                    for reason, named in value["named"].items()},
                   value["hash_digests"], value["merged"], value["shard_records"])


def _bucket_rows(part: int, folder: str):
    """(index, part, manifest row, framed record) for each image of one part's bucket, in
    listing order: the bucket's shards hold its images in that same order, one each."""
    shard_records = records.iterate(folder, framed=True)
    rows = 0
    for row in _read_csv_rows(os.path.join(folder, BUCKET_MANIFEST)):
        record = next(shard_records, None)
        if record is None:
            break
        rows += 1
        yield order_key(row["index"]), part, row, record
    else:
        if next(shard_records, None) is None:
            return
    raise AdmodError(f"Checked bucket '{folder}': its {BUCKET_MANIFEST} and its shards hold "
                     "different numbers of images (the part is damaged): run the pipeline "
                     "again without reusing cached steps (admod submit --no-cache).")


def _load_hashes(db: sqlite3.Connection, folders: list[str]) -> None:
    """Every image's (index, sha256, label) of one bucket into SQLite, and per content hash its
    first occurrence and whether it is under both labels."""
    db.execute("CREATE TABLE usable (idx BLOB PRIMARY KEY, sha256 TEXT, label TEXT)")
    for folder in folders:
        rows = _read_csv_rows(os.path.join(folder, BUCKET_MANIFEST))
        db.executemany("INSERT INTO usable VALUES (?, ?, ?)",
                       ((order_key(r["index"]), r["sha256"], r["label"]) for r in rows))
    db.execute("CREATE TABLE decision AS SELECT sha256, MIN(idx) AS kept, "
               "COUNT(DISTINCT label) > 1 AS conflict FROM usable GROUP BY sha256")
    db.execute("CREATE UNIQUE INDEX decision_sha256 ON decision (sha256)")


def _decisions(db: sqlite3.Connection):
    """(index, kept, conflict) per image, in listing order."""
    return db.execute("SELECT u.idx, u.idx = d.kept, d.conflict FROM usable u "
                      "JOIN decision d USING (sha256) ORDER BY u.idx")


def _hash_digests(db: sqlite3.Connection, options: SplitOptions,
                  grouped: "NearCopies") -> dict[str, str]:
    """Per split and for all ("data"): sha256 over the sorted content hashes used."""
    digests = {name: hashlib.sha256() for name in (*SPLITS, "data")}
    started = dict.fromkeys(digests, False)
    for (sha256,) in db.execute("SELECT sha256 FROM decision WHERE NOT conflict ORDER BY sha256"):
        name = split_of(sha256, options, grouped)
        for key in (name, "data"):
            digests[key].update((("\n" if started[key] else "") + sha256).encode())
            started[key] = True
    return {name: digest.hexdigest() for name, digest in digests.items()}


def merge_bucket(bucket: int, part_dirs: list[str], out_dirs: dict[str, str],
                 manifest_path: str, options: SplitOptions,
                 grouped: "NearCopies | None" = None) -> BucketSummary:
    """One bucket across every part: duplicates settled (the first in listing order is kept),
    label conflicts excluded (every copy), each kept image's record copied into its split's
    shards under `out_dirs[split]` (named after the bucket), and the bucket's rows written to
    `manifest_path` in listing order."""
    expected = [read_census(d)["buckets"].get(f"{bucket:02d}", 0) for d in part_dirs]
    folders = [(part, bucket_folder(d, bucket)) for part, d in enumerate(part_dirs)
               if expected[part]]
    for part, folder in folders:
        if not os.path.isdir(folder):
            raise _count_mismatch(part_dirs[part], bucket, expected[part], 0)
    read = collections.Counter()
    writers = {name: records.ShardWriter(out_dirs[name], options.shard_size,
                                         prefix=f"part-{bucket:02d}") for name in SPLITS}
    summary = BucketSummary(collections.Counter(), collections.Counter(),
                            {reason: [] for reason in MERGE_REASONS}, {})
    with tempfile.TemporaryDirectory(prefix="admod-merge-") as tmp, \
            writes_into(tmp, os.path.dirname(manifest_path), *out_dirs.values()), \
            open(manifest_path, "w", newline="", **ENCODING) as out:
        db = sqlite3.connect(os.path.join(tmp, "hashes.sqlite"))
        _load_hashes(db, [folder for _, folder in folders])
        decisions = _decisions(db)
        manifest = csv.DictWriter(out, ["index"] + MANIFEST_COLUMNS)
        manifest.writeheader()
        for index, part, row, record in heapq.merge(*(_bucket_rows(*f) for f in folders)):
            read[part] += 1
            _decide(row, index, next(decisions), options, grouped or NearCopies())
            if row["split"]:
                writers[row["split"]].write_framed(record)
                summary.counts[row["label"], row["split"]] += 1
            else:
                summary.exclusions[row["reason"]] += 1
                if len(summary.named[row["reason"]]) < REPORTED_URIS:
                    summary.named[row["reason"]].append((index, row["uri"]))
            manifest.writerow(row)
        summary.hash_digests = _hash_digests(db, options, grouped or NearCopies())
        db.close()
    for writer in writers.values():
        writer.close()
    for part, part_dir in enumerate(part_dirs):
        if read[part] != expected[part]:
            raise _count_mismatch(part_dir, bucket, expected[part], read[part])
    summary.merged = sum(read.values())
    summary.shard_records = {name: writer.shard_counts() for name, writer in writers.items()}
    return summary


def _count_mismatch(part_dir: str, bucket: int, expected: int, found: int) -> AdmodError:
    return AdmodError(f"Checked partition '{part_dir}' put {expected} images in bucket "
                      f"{bucket:02d} but the merge found {found} there (the part is damaged or "
                      "incomplete): run the pipeline again without reusing cached steps (admod "
                      "submit --no-cache).")


def _decide(row: dict, index: bytes, decision: tuple, options: SplitOptions,
            grouped: "NearCopies") -> None:
    decided_index, kept, conflict = decision
    assert decided_index == index, (decided_index, index)  # both walk the listing order
    if conflict:
        row["reason"] = images.LABEL_CONFLICT
    elif not kept:
        row["reason"] = images.DUPLICATE
    else:
        row["split"] = split_of(row["sha256"], options, grouped)


def merge_parts(part_dirs: list[str], out_dirs: dict[str, str], manifest_path: str,
                options: SplitOptions, processes: int = 1,
                started: "_Processes | None" = None) -> SplitSummary:
    """Every bucket merged (`merge_bucket`, in `processes` processes, or in `started` ones: the
    check's, already running), then the manifest (CSV, one row per listed file, in listing
    order) from the buckets' rows and the parts' excluded files, and the summary from the
    buckets'."""
    _check_part_layout(part_dirs)
    grouped = group_near_copies([os.path.join(d, PART_KEYS) for d in part_dirs], options)
    with tempfile.TemporaryDirectory(prefix="admod-merge-") as tmp, \
            _merge_processes(part_dirs, processes, started) as merging:
        manifests = [os.path.join(tmp, f"bucket-{b:02d}.csv") for b in range(BUCKETS)]
        buckets = merging.map(merge_bucket, range(BUCKETS), [part_dirs] * BUCKETS,
                              [out_dirs] * BUCKETS, manifests, [options] * BUCKETS,
                              [grouped] * BUCKETS)
        log.info("merged %d buckets in %d process(es)", BUCKETS, merging.count)
        excluded = [os.path.join(d, PART_EXCLUDED) for d in part_dirs]
        return summarize(buckets, manifests + excluded, manifest_path, options,
                         [read_census(d) for d in part_dirs], grouped)


def _merge_processes(part_dirs: list[str], processes: int, started: "_Processes | None"):
    """The processes to merge in: `started` ones when there are as many as asked for, or when
    the data is small (they cost nothing more); else `processes` new ones, or this one alone
    under PARALLEL_MERGE_BYTES of checked data (starting processes would take longer than the
    merge)."""
    small = bytes_under(part_dirs) < PARALLEL_MERGE_BYTES
    if started is not None and started.count > 1 and (started.count >= processes or small):
        return contextlib.nullcontext(started)
    return _Processes(1 if small else processes)


def summarize(buckets: list[BucketSummary], row_files: list[str], manifest_path: str,
              options: SplitOptions, censuses: list[dict],
              grouped: "NearCopies | None" = None) -> SplitSummary:
    """The manifest (every listed file, in listing order) from the buckets' rows and the
    parts' excluded files (`row_files`, CSVs each in listing order), and the split's summary
    from the buckets' (in bucket order), every count reconciled with the parts' `censuses`."""
    exclusions, listed = _write_manifest(row_files, manifest_path)
    counts = sum((b.counts for b in buckets), collections.Counter())
    exclusions.update(sum((b.exclusions for b in buckets), collections.Counter()))
    named = {reason: [uri for _, uri in heapq.nsmallest(
        REPORTED_URIS, (n for b in buckets for n in b.named[reason]))]
        for reason in MERGE_REASONS}
    summary = SplitSummary(
        counts=_count_table(counts), exclusions=_exclusion_table(exclusions),
        duplicates=named[images.DUPLICATE], conflicts=named[images.LABEL_CONFLICT],
        listed=listed, fingerprints=_fingerprints(buckets))
    summary.reconciled = reconcile(censuses, buckets, listed, exclusions)
    summary.near_copy_groups = (grouped or NearCopies()).groups
    summary.shard_records = {name: [n for b in buckets for n in b.shard_records[name]]
                             for name in SPLITS}
    _check_every_class_in_every_split(summary.counts, options)
    return summary


def reconcile(censuses: list[dict], buckets: list[BucketSummary], manifest_rows: int,
              exclusions: collections.Counter) -> dict[str, int]:
    """Every hand-over's counts, from the checks' censuses to the shards: listed = checked =
    manifest rows; checked = usable + excluded by the check; usable = merged; merged = kept +
    duplicates + conflicts; kept per split = records in its shards. Raises an AdmodError naming
    the two counts that disagree; returns the totals."""
    total = collections.Counter()
    for census in censuses:
        total.update(listed=census["listed"], checked=census["checked"],
                     excluded_by_check=census["excluded"], usable=sum(census["buckets"].values()))
    total["merged"] = sum(b.merged for b in buckets)
    total.update({reason: sum(b.exclusions[reason] for b in buckets) for reason in MERGE_REASONS})
    for name in SPLITS:
        total[name] = sum(n for b in buckets for (_, split), n in b.counts.items() if split == name)
        total[f"{name}_records"] = sum(sum(b.shard_records[name]) for b in buckets)
    total["manifest_rows"] = manifest_rows
    checks = [("files listed", "listed", ["checked"]),
              ("files listed", "listed", ["manifest_rows"]),
              ("files checked", "checked", ["usable", "excluded_by_check"]),
              ("usable images", "usable", ["merged"]),
              ("images merged", "merged", [*SPLITS, *MERGE_REASONS])]
    checks += [(f"{name} images", name, [f"{name}_records"]) for name in SPLITS]
    for what, name, parts in checks:
        if total[name] != sum(total[p] for p in parts):
            raise AdmodError(f"The split's counts do not reconcile: {what} {total[name]} != "
                             f"{' + '.join(f'{p} {total[p]}' for p in parts)}; nothing was "
                             "published: run the pipeline again without reusing cached steps.")
    if sum(exclusions.values()) != total["excluded_by_check"] + sum(
            total[r] for r in MERGE_REASONS):
        raise AdmodError("The split's counts do not reconcile: the manifest's exclusions "
                         f"{sum(exclusions.values())} != the check's and the merge's; nothing was "
                         "published: run the pipeline again without reusing cached steps.")
    return dict(total)


# --- near-copies: one group, one split ---------------------------------------------------------

@dataclasses.dataclass
class NearCopies:
    """The near-copy groups of a data set: each grouped image's split (sha256 -> split) and
    the groups' uris (for the report)."""
    splits: dict[str, str] = dataclasses.field(default_factory=dict)
    groups: list[list[str]] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict:
        return {"splits": self.splits, "groups": self.groups}

    @classmethod
    def from_json(cls, value: dict) -> "NearCopies":
        return cls(value["splits"], value["groups"])


def group_near_copies(key_files: list[str], options: SplitOptions) -> NearCopies:
    """Every usable image's near-copy key, from the parts' PART_KEYS files, grouped
    (admod.near_copies); an image listed twice (an exact duplicate) counts once, a flat one
    (no key) not at all."""
    seen, sha256s, keys, uris = set(), [], [], []
    for path in key_files:
        for row in _read_csv_rows(path):
            if row["near_copy_key"] and row["sha256"] not in seen:
                seen.add(row["sha256"])
                sha256s.append(row["sha256"])
                keys.append(row["near_copy_key"])
                uris.append(row["uri"])
    splits, groups = near_copies.group_splits(
        sha256s, keys, lambda h: assign_split(h, options.seed, options.val_fraction,
                                              options.test_fraction))
    listed = sorted(sorted(uris[p] for p in group) for group in groups)
    log.info("near-copies: %d groups of %d images among %d", len(groups), len(splits),
             len(sha256s))
    return NearCopies(splits, listed)


def split_of(sha256: str, options: SplitOptions, grouped: "NearCopies") -> str:
    """An image's split: its near-copy group's, else its own (`assign_split`)."""
    return grouped.splits.get(sha256) or assign_split(sha256, options.seed,
                                                      options.val_fraction,
                                                      options.test_fraction)


# --- the merge fanned out: one task per bucket, each reading only its bucket of every part ---

def local_part(part_uri: str, bucket: int | None, scratch: str) -> str:
    """A checked part as a folder on this machine, for the files of `bucket` (or, None, its
    excluded rows): the part itself when it is a local folder (kfp.local), else those files
    downloaded from the object store (gs://, s3:// or minio://) into `scratch`, nothing of the
    other buckets."""
    if not storage.is_remote(part_uri):
        if "://" in part_uri:
            raise AdmodError(
                f"Checked partition '{part_uri}' is in an artifact store that admod's "
                "fanned-out merge cannot read (it reads gs://, s3://, minio:// and local "
                "folders): run with a gs:// or s3:// pipeline root (--pipeline-root "
                "gs://BUCKET/PATH), or compile with --kfp-version 2.5.0 for the split in one "
                "task.")
        _check_part_layout([part_uri])
        return part_uri
    if not all(storage.exists(storage.join(part_uri, name))
               for name in (PART_EXCLUDED, PART_CENSUS, PART_KEYS)):
        raise _not_a_part(part_uri)
    os.makedirs(scratch, exist_ok=True)
    storage.download_to_file(storage.join(part_uri, PART_CENSUS),
                             os.path.join(scratch, PART_CENSUS))
    if bucket is None:
        for name in (PART_EXCLUDED, PART_KEYS):
            storage.download_to_file(storage.join(part_uri, name), os.path.join(scratch, name))
    else:
        name = os.path.basename(bucket_folder(part_uri, bucket))
        if storage.is_dir(storage.join(part_uri, name)):  # a missing one is said by the merge
            storage.download_dir(storage.join(part_uri, name), os.path.join(scratch, name))
    return scratch


def _check_part_layout(part_dirs: list[str]) -> None:
    for part_dir in part_dirs:
        if not all(os.path.isfile(os.path.join(part_dir, name))
                   for name in (PART_EXCLUDED, PART_CENSUS, PART_KEYS)):
            raise _not_a_part(part_dir)


def _not_a_part(part_dir: str) -> AdmodError:
    return AdmodError(f"Checked partition '{part_dir}' lacks {PART_EXCLUDED}, {PART_CENSUS} or "
                      f"{PART_KEYS}: it was written by "
                      "another admod version or not at all; run the pipeline again without "
                      "reusing cached steps (admod submit --no-cache).")


def bytes_under(folders: list[str]) -> int:
    """The size of every file under `folders`."""
    return sum(os.path.getsize(os.path.join(d, f)) for folder in folders
               for d, _, files in os.walk(folder) for f in files)


def _write_manifest(paths: list[str], manifest_path: str) -> tuple[collections.Counter, int]:
    """The rows of every CSV in `paths` (each in listing order) merged into `manifest_path`
    in listing order; returns the check's exclusions (the merge's are the buckets' figures)
    and the rows written."""
    from admod.reports import csv_safe

    exclusions, listed = collections.Counter(), 0
    rows = heapq.merge(*(_read_csv_rows(p) for p in paths if os.path.exists(p)),
                       key=lambda row: order_key(row["index"]))
    with open(manifest_path, "w", newline="", **ENCODING) as out:
        manifest = csv.DictWriter(out, MANIFEST_COLUMNS, extrasaction="ignore")
        manifest.writeheader()
        for row in rows:
            if row["reason"] and row["reason"] not in MERGE_REASONS:  # "": a usable image
                exclusions[row["reason"]] += 1
            manifest.writerow({**row, "uri": csv_safe(row["uri"])})
            listed += 1
    return exclusions, listed


def _fingerprints(buckets: list[BucketSummary]) -> dict[str, str]:
    """Per split and for all ("data"): sha256 over the buckets' digests of their sorted
    content hashes, in bucket order (which is hash order)."""
    return {name: hashlib.sha256("\n".join(b.hash_digests[name] for b in buckets).encode())
            .hexdigest() for name in (*SPLITS, "data")}


def _count_table(counts: collections.Counter) -> "pd.DataFrame":
    import pandas as pd

    return pd.DataFrame([[counts[label, name] for name in SPLITS] for label in CLASS_NAMES],
                        index=list(CLASS_NAMES), columns=list(SPLITS))


def _exclusion_table(exclusions: collections.Counter) -> "pd.Series":
    import pandas as pd

    return pd.Series(exclusions, dtype="int64").sort_index()


def _check_every_class_in_every_split(counts: "pd.DataFrame", options: SplitOptions) -> None:
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
    """list -> check (the partitions in `check_processes_for` processes) -> merge (a process
    per CPU; the check's processes when there are several), in a scratch folder on local disk.
    The processes share this machine: each gets its share of `rules.workers` threads (more
    only contend for the same cores)."""
    merge_processes = merge_processes_for(rules)
    with tempfile.TemporaryDirectory(prefix="admod-split-") as work, \
            writes_into(work, os.path.dirname(manifest_path), *out_dirs.values()):
        started = time.monotonic()
        listings, parts = _listed(data_root, work, partitions)
        listed = time.monotonic()
        count = check_processes_for(listings, merge_processes)
        check_rules = dataclasses.replace(rules, workers=max(1, rules.workers // count))
        with _Processes(count) as processes:
            processes.map(check_partition, listings, parts, [check_rules] * partitions)
            checked = time.monotonic()
            summary = merge_parts(parts, out_dirs, manifest_path, options, merge_processes,
                                  started=processes)
        log.info("split stages: list %.1f s, check %.1f s (%d partitions in %d processes), "
                 "merge %.1f s", listed - started, checked - listed, partitions, count,
                 time.monotonic() - checked)
        return summary


def _listed(data_root: str, work: str, partitions: int) -> tuple[list[str], list[str]]:
    """Lists `data_root` into `partitions` under `work`: (each partition's listing, the folder
    its check writes)."""
    list_images(data_root, os.path.join(work, "listing"), partitions)
    return ([listing_part(os.path.join(work, "listing"), i) for i in range(partitions)],
            [os.path.join(work, f"part-{i:05d}") for i in range(partitions)])


def list_and_check(data_root: str, work: str, rules: ImageRules,
                   partitions: int = 1) -> list[str]:
    """The list-images task, then each check-images task, one after the other in this process,
    under `work`; returns the checked parts' folders, for merge_parts."""
    listings, parts = _listed(data_root, work, partitions)
    for listing, part in zip(listings, parts, strict=True):
        check_partition(listing, part, rules)
    return parts


# Fewer images than this per process, and starting it costs more than it saves (~1 s each).
MIN_FILES_PER_CHECK_PROCESS = 500


def check_processes_for(listings: list[str], cpus: int) -> int:
    """The processes worth starting to check `listings`: one per partition, at most one per CPU
    and one per MIN_FILES_PER_CHECK_PROCESS files; said when fewer than the partitions."""
    files = sum(_count_rows(path) for path in listings)
    count = max(1, min(len(listings), cpus, -(-files // MIN_FILES_PER_CHECK_PROCESS)))
    if count < len(listings):
        log.info("checking %d partitions in %d process(es): %d files on %d CPU(s) need no more",
                 len(listings), count, files, cpus)
    return count


def _count_rows(csv_path: str) -> int:
    return sum(1 for _ in _read_csv_rows(csv_path))


def merge_processes_for(rules: ImageRules) -> int:
    """A merge process per CPU (`rules.workers` is two I/O threads per CPU), at most one per
    bucket."""
    return max(1, min(BUCKETS, rules.workers // 2))


class _Processes:
    """`map` in `count` new processes, started once for every map in the `with` block (in this
    process when `count` is 1). Leaving the block on an error or an interrupt stops the
    processes' work at once (SIGTERM), not after each has finished its partition."""

    def __init__(self, count: int):
        self.count, self.pool = max(1, count), None

    def __enter__(self) -> "_Processes":
        if self.count > 1:
            spawn = multiprocessing.get_context("spawn")  # no fork of a process running TF
            self.pool = concurrent.futures.ProcessPoolExecutor(
                self.count, mp_context=spawn, initializer=interrupts.interrupt_on_sigterm)
        return self

    def __exit__(self, error_type, *exc) -> None:
        if self.pool is None:
            return
        if error_type is not None:
            for process in list(self.pool._processes.values()):  # no public way before 3.14
                process.terminate()
        self.pool.shutdown(cancel_futures=True)

    def map(self, fn, *iterables) -> list:
        if self.pool is None:
            return list(map(fn, *iterables))
        return list(self.pool.map(fn, *iterables))


def read_manifest(path: str) -> "pd.DataFrame":
    """A manifest as a table (for tests and small data: it is the whole file in memory)."""
    import pandas as pd

    return pd.read_csv(path, dtype=str, keep_default_na=False, **{
        "encoding": ENCODING["encoding"], "encoding_errors": ENCODING["errors"]}).astype(
        {"size_bytes": "int64", "width": "int64", "height": "int64"})
