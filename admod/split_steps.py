"""The split's pipeline steps (list-images, check-images, merge-bucket, split, and all of them on
one machine):
paths in, files out, as admod.steps does for the others.

Apart from admod.steps so that the split's tasks never import TensorFlow: a check-images task
starts in well under a second and stays small (bench/split.py).
"""

import contextlib
import errno
import fcntl
import json
import logging
import os
import shutil
import tempfile

from admod import records, reports, split, storage
from admod.defaults import CLASS_NAMES
from admod.errors import AdmodError
from admod.options import ImageRules, SplitOptions

log = logging.getLogger(__name__)


def split_step(*, data_root: str, out_dirs: dict[str, str], manifest_path: str, report_path: str,
               options: SplitOptions, rules: ImageRules, partitions: int = 1) -> dict:
    """The whole split on one machine, `partitions` processes checking the images: one shard
    folder per split, the manifest (CSV) and the report (Markdown)."""
    summary = split.run_split(data_root, out_dirs, manifest_path, options, rules, partitions)
    return _split_outputs(summary, data_root, out_dirs, report_path, options, rules)


def split_into_folder(*, data_root: str, out: str, options: SplitOptions, rules: ImageRules,
                      partitions: int = 1) -> None:
    """split_step into the new or empty folder `out` (shards per split, manifest.csv,
    report.md): written beside it and moved in whole, so that a killed split leaves no
    half-written `out`, and a second split into the same `out` stops with nothing written."""
    out = os.path.abspath(out)
    _refuse_inside(out, data_root)
    with _claimed(out):
        staging = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.tmp-",
                                   dir=os.path.dirname(out))
        try:
            split_step(data_root=data_root, out_dirs={name: os.path.join(staging, name)
                                                      for name in split.SPLITS},
                       manifest_path=os.path.join(staging, "manifest.csv"),
                       report_path=os.path.join(staging, "report.md"), options=options,
                       rules=rules, partitions=partitions)
            os.rmdir(out)  # empty, as checked
            os.rename(staging, out)
        except OSError as error:
            shutil.rmtree(staging, ignore_errors=True)
            if error.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise _not_empty(out) from None
            raise
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


@contextlib.contextmanager
def _claimed(out: str):
    """`out`, made if new, locked for this split (flock on the folder): a second split into it
    stops at once; after the lock, `out` must be empty."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise _not_empty(out)
    created = not os.path.exists(out)
    try:
        os.makedirs(out, exist_ok=True)
        fd = os.open(out, os.O_RDONLY)
    except OSError as error:
        raise AdmodError(f"--out '{out}' cannot be made ({error.strerror}): pass a folder this "
                         "user can create and write.") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AdmodError(f"Another admod split is writing into --out '{out}' now: wait for "
                             "it, or pass another --out.") from None
        except OSError:
            pass  # a file system without locks: the move at the end still refuses a full `out`
        if os.listdir(out):
            raise _not_empty(out)
        yield
    finally:
        os.close(fd)
        if created:
            with contextlib.suppress(OSError):  # only while empty: a failed split leaves no `out`
                os.rmdir(out)


def _refuse_inside(out: str, data_root: str) -> None:
    """The data is read-only to admod: no output inside the data root."""
    if storage.is_inside(out, data_root):
        raise AdmodError(f"--out '{out}' is inside the data root '{data_root}', which admod only "
                         "reads: pass a folder outside it.")


def _not_empty(out: str) -> AdmodError:
    return AdmodError(f"--out '{out}' is not an empty folder: pass a new one (a split is never "
                      "mixed with an earlier one's shards).")


def list_images_step(*, data_root: str, partitions: int) -> list[str]:
    """The split's first stage: the data root listed into `partitions` parts; returns one key
    per part, '<part>:<its fingerprint>', which check-images runs on and is cached by."""
    with tempfile.TemporaryDirectory(prefix="admod-listing-") as listing:
        fingerprints = split.list_images(data_root, listing, partitions)
    return [f"{part}:{fingerprint}" for part, fingerprint in enumerate(fingerprints)]


def check_images_step(*, data_root: str, partition_key: str, partitions: int, part_dir: str,
                      rules: ImageRules) -> int:
    """One partition of the split: its files checked, its usable images sharded. The task
    lists the data root itself, so that it takes nothing from the run that listed it but its
    key: a cache can reuse it while its files are unchanged."""
    part, _, fingerprint = partition_key.partition(":")
    if not part.isdigit() or int(part) >= partitions or not fingerprint:
        raise AdmodError(f"partition '{partition_key}' is not a key list-images wrote for "
                         f"{partitions} partition(s): run the pipeline as compiled.")
    with tempfile.TemporaryDirectory(prefix="admod-listing-") as listing:
        if split.list_images(data_root, listing, partitions)[int(part)] != fingerprint:
            raise AdmodError(f"The files of partition {part} under {data_root} changed while "
                             "the split ran: run the pipeline again (nothing was written).")
        return split.check_partition(split.listing_part(listing, int(part)), part_dir, rules)


# A merge-bucket task's result folder: its manifest rows, and what the split's last task needs.
BUCKET_ROWS, BUCKET_RESULT = "rows.csv", "result.json"


def merge_bucket_step(*, part_uris: list[str], bucket: str, out_dirs: dict[str, str],
                      out_uris: dict[str, str], result_dir: str, options: SplitOptions,
                      grouped: split.NearCopies) -> dict:
    """One bucket of the fanned-out merge: that bucket of every checked part (read where it is,
    or downloaded from Cloud Storage, nothing of the other buckets) merged into its shards per
    split (`out_dirs`, known to other tasks as `out_uris`); `result_dir` gets its manifest rows
    and its result (its summary and its shards' uris per split). Returns its figures for the
    UI."""
    if not bucket.isdigit() or int(bucket) >= split.BUCKETS:
        raise AdmodError(f"bucket '{bucket}' is not one of the split's {split.BUCKETS} buckets "
                         "(00 to 15): run the pipeline as compiled.")
    os.makedirs(result_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="admod-bucket-") as scratch:
        part_dirs = [split.local_part(uri, int(bucket), os.path.join(scratch, f"part-{i:05d}"))
                     for i, uri in enumerate(part_uris)]
        summary = split.merge_bucket(int(bucket), part_dirs, out_dirs,
                                     os.path.join(result_dir, BUCKET_ROWS), options, grouped)
    shards = {name: [storage.join(out_uris[name], shard)
                     for shard in records.shard_names(out_dirs[name])] for name in split.SPLITS}
    with open(os.path.join(result_dir, BUCKET_RESULT), "w") as f:
        json.dump({"bucket": int(bucket), "summary": summary.to_json(), "shards": shards}, f)
    return {"bucket": bucket, "kept": sum(summary.counts.values()),
            "excluded": sum(summary.exclusions.values())}


def gather_parts_step(*, part_uris: list[str], gathered_path: str,
                      options: SplitOptions) -> dict:
    """The checked parts' uris and their near-copy groups (every part's keys read, local or
    downloaded), as the one small JSON artifact every merge-bucket task takes."""
    with tempfile.TemporaryDirectory(prefix="admod-keys-") as scratch:
        key_files = []
        for i, uri in enumerate(part_uris):
            if storage.is_remote(uri):
                key_files.append(os.path.join(scratch, f"keys-{i:05d}.csv"))
                storage.download_to_file(storage.join(uri, split.PART_KEYS), key_files[-1])
            else:
                key_files.append(os.path.join(split.local_part(uri, None, scratch),
                                              split.PART_KEYS))
        grouped = split.group_near_copies(key_files, options)
    with open(gathered_path, "w") as f:
        json.dump({"parts": part_uris, "near_copies": grouped.to_json()}, f)
    return {"parts": len(part_uris), "near_copy_groups": len(grouped.groups),
            "near_copy_images": len(grouped.splits)}


def read_gathered(path: str) -> tuple[list[str], split.NearCopies]:
    """The checked parts' uris and their near-copy groups, from gather-parts' artifact."""
    gathered = _read_json(path)
    return gathered["parts"], split.NearCopies.from_json(gathered["near_copies"])


def finish_split_step(*, result_dirs: list[str], part_uris: list[str], data_root: str,
                      out_dirs: dict[str, str], manifest_path: str, report_path: str,
                      options: SplitOptions, rules: ImageRules,
                      grouped: split.NearCopies) -> dict:
    """The fanned-out split's last stage: the manifest and the report from the merge-bucket
    tasks' results and the parts' excluded files. Each split's folder lists its shards where
    those tasks wrote them: no image is copied again."""
    results = sorted(((_read_json(os.path.join(d, BUCKET_RESULT)), d) for d in result_dirs),
                     key=lambda result: result[0]["bucket"])
    if [r["bucket"] for r, _ in results] != list(range(split.BUCKETS)):
        raise AdmodError(f"The split's last task got buckets {[r['bucket'] for r, _ in results]},"
                         f" not each of the {split.BUCKETS} once: run the pipeline as compiled.")
    with tempfile.TemporaryDirectory(prefix="admod-excluded-") as scratch:
        parts = [split.local_part(uri, None, os.path.join(scratch, str(i)))
                 for i, uri in enumerate(part_uris)]
        summary = split.summarize(
            [split.BucketSummary.from_json(r["summary"]) for r, _ in results],
            [os.path.join(d, BUCKET_ROWS) for _, d in results]
            + [os.path.join(part, split.PART_EXCLUDED) for part in parts], manifest_path,
            options, [split.read_census(part) for part in parts], grouped)
    shards = {name: [uri for r, _ in results for uri in r["shards"][name]]
              for name in split.SPLITS}
    return _split_outputs(summary, data_root, out_dirs, report_path, options, rules, shards)


def _read_json(path: str):
    with open(path) as f:
        return json.load(f)


def publish_split_figures(figures: dict, metrics, splits: dict, manifest) -> None:
    """The split's figures where the UI shows them: each on `metrics` (log_metric), each
    split's own on its artifact's metadata, the listed count on the manifest's. Duck-typed:
    the artifacts are KFP's, this module does not import it."""
    for name, value in figures.items():
        metrics.log_metric(name, value)
    for name, artifact in splits.items():
        artifact.metadata.update({k: v for k, v in figures.items() if k.startswith(name)})
    manifest.metadata["listed"] = figures["listed"]


def _split_outputs(summary: split.SplitSummary, data_root: str, out_dirs: dict[str, str],
                   report_path: str, options: SplitOptions, rules: ImageRules,
                   shards: dict[str, list[str]] | None = None) -> dict:
    """Each split's info.json (with `shards`, the uris of its shards held elsewhere), the
    report, and the figures for the UI."""
    counts = summary.counts
    for name, folder in out_dirs.items():
        os.makedirs(folder, exist_ok=True)
        records.write_info(folder, {**({"shards": shards[name]} if shards else {}),
            "shard_records": summary.shard_records[name],
            "split": name, "count": int(counts[name].sum()),
            "class_names": list(CLASS_NAMES),
            "class_counts": {label: int(counts.loc[label, name]) for label in CLASS_NAMES},
            "fingerprint": summary.fingerprints[name],
            "data_fingerprint": summary.fingerprints["data"], "data_root": data_root,
            "seed": options.seed, "max_image_pixels": rules.max_image_pixels})
    with open(report_path, "w") as f:
        f.write(reports.split_markdown(counts, summary.exclusions, summary.duplicates,
                                       summary.conflicts, summary.reconciled,
                                       summary.near_copy_groups))
    log.info("split:\n%s", reports.split_table(counts).to_string())
    figures = {f"{name}_{label}": int(counts.loc[label, name])
               for name in split.SPLITS for label in CLASS_NAMES}
    figures.update({f"excluded_{reason}": int(n) for reason, n in summary.exclusions.items()})
    figures["listed"] = summary.listed
    figures["near_copy_groups"] = len(summary.near_copy_groups)
    figures.update({f"reconciled_{name}": n for name, n in summary.reconciled.items()})
    return figures
