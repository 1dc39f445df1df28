"""The split's steps that write its report: the whole split on one machine (`split_step`, and
`admod split`'s `split_into_folder`) and the fanned-out split's last task. Paths in, files out,
as admod.steps does for the others; the tasks before the last are in admod.split_tasks.
"""

import collections
import contextlib
import errno
import fcntl
import logging
import os
import shutil
import tempfile

from admod import records, reports, slices, split, storage
from admod.split_tasks import BUCKET_RESULT, BUCKET_ROWS
from admod.defaults import CLASS_NAMES
from admod.errors import AdmodError
from admod.options import ImageRules, SplitOptions

log = logging.getLogger(__name__)


def split_step(*, data_root: str, out_dirs: dict[str, str], manifest_path: str, report_path: str,
               options: SplitOptions, rules: ImageRules, partitions: int = 1) -> dict:
    """The whole split on one machine, `partitions` processes checking the images: one shard
    folder per split, the manifest (CSV) and the report (Markdown)."""
    summary = split.run_split(data_root, out_dirs, manifest_path, options, rules, partitions)
    return _split_outputs(summary, data_root, out_dirs, manifest_path, report_path, options,
                          rules)


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
        except BaseException as error:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(error, OSError) and error.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise _not_empty(out) from None  # filled meanwhile (a file system without locks)
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


def finish_split_step(*, result_dirs: list[str], part_uris: list[str], data_root: str,
                      out_dirs: dict[str, str], manifest_path: str, report_path: str,
                      options: SplitOptions, rules: ImageRules,
                      grouped: split.NearCopies) -> dict:
    """The fanned-out split's last stage: the manifest and the report from the merge-bucket
    tasks' results and the parts' excluded files. Each split's folder lists its shards where
    those tasks wrote them: no image is copied again."""
    results = sorted(((storage.read_json(os.path.join(d, BUCKET_RESULT)), d) for d in result_dirs),
                     key=lambda result: result[0]["bucket"])
    _check_bucket_results(results, part_uris)
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
    return _split_outputs(summary, data_root, out_dirs, manifest_path, report_path, options,
                          rules, shards)


def _check_bucket_results(results: list[tuple[dict, str]], part_uris: list[str]) -> None:
    """Each bucket's result once, each merged from this split's parts: a bucket counted twice
    and another lost, or another run's result, would pass a count alone."""
    foreign = [d for r, d in results if r.get("parts") != part_uris]
    if foreign:
        raise AdmodError(f"Bucket result '{foreign[0]}' was merged from other parts than this "
                         "split's (another run's result): run the pipeline as compiled.")
    got = collections.Counter(r["bucket"] for r, _ in results)
    twice = sorted(b for b, n in got.items() if n > 1)
    missing = sorted(set(range(split.BUCKETS)) - set(got))
    unknown = sorted(set(got) - set(range(split.BUCKETS)))
    if twice or missing or unknown:
        named = "; ".join(f"{what} {', '.join(f'{b:02d}' for b in buckets)}" for what, buckets in
                          (("twice:", twice), ("missing:", missing), ("unknown:", unknown))
                          if buckets)
        raise AdmodError(f"The split's last task did not get each of the {split.BUCKETS} buckets "
                         f"once ({named}): run the pipeline as compiled.")


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
                   manifest_path: str, report_path: str, options: SplitOptions,
                   rules: ImageRules, shards: dict[str, list[str]] | None = None) -> dict:
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
                                       summary.near_copy_groups,
                                       slices.composition(manifest_path, split.SPLITS)))
    log.info("split:\n%s", reports.split_table(counts).to_string())
    figures = {f"{name}_{label}": int(counts.loc[label, name])
               for name in split.SPLITS for label in CLASS_NAMES}
    figures.update({f"excluded_{reason}": int(n) for reason, n in summary.exclusions.items()})
    figures["listed"] = summary.listed
    figures["near_copy_groups"] = len(summary.near_copy_groups)
    figures.update({f"reconciled_{name}": n for name, n in summary.reconciled.items()})
    return figures
