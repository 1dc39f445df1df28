"""The split's pipeline steps (list-images, check-images, split, and all three on one machine):
paths in, files out, as admod.steps does for the others.

Apart from admod.steps so that the split's tasks never import TensorFlow: a check-images task
starts in well under a second and stays small (bench/split.py).
"""

import logging
import os
import shutil
import tempfile

from admod import records, reports, split
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
    half-written `out`."""
    out = os.path.abspath(out)
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise AdmodError(f"--out '{out}' is not an empty folder: pass a new one (a split is "
                         "never mixed with an earlier one's shards).")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.tmp-", dir=os.path.dirname(out))
    try:
        split_step(data_root=data_root, out_dirs={name: os.path.join(staging, name)
                                                  for name in split.SPLITS},
                   manifest_path=os.path.join(staging, "manifest.csv"),
                   report_path=os.path.join(staging, "report.md"), options=options, rules=rules,
                   partitions=partitions)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if os.path.isdir(out):  # empty, as checked
        os.rmdir(out)
    os.rename(staging, out)


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


def merge_split_step(*, part_dirs: list[str], data_root: str, out_dirs: dict[str, str],
                     manifest_path: str, report_path: str, options: SplitOptions,
                     rules: ImageRules) -> dict:
    """The split's last stage: the checked partitions merged into the same outputs as
    split_step, a bucket per CPU of the task at a time."""
    summary = split.merge_parts(part_dirs, out_dirs, manifest_path, options,
                                split.merge_processes_for(rules))
    return _split_outputs(summary, data_root, out_dirs, report_path, options, rules)


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
                   report_path: str, options: SplitOptions, rules: ImageRules) -> dict:
    """Each split's info.json, the report, and the figures for the UI."""
    counts = summary.counts
    for name, folder in out_dirs.items():
        records.write_info(folder, {
            "split": name, "count": int(counts[name].sum()),
            "class_names": list(CLASS_NAMES),
            "class_counts": {label: int(counts.loc[label, name]) for label in CLASS_NAMES},
            "fingerprint": summary.fingerprints[name],
            "data_fingerprint": summary.fingerprints["data"], "data_root": data_root,
            "seed": options.seed, "max_image_pixels": rules.max_image_pixels})
    with open(report_path, "w") as f:
        f.write(reports.split_markdown(counts, summary.exclusions, summary.duplicates,
                                       summary.conflicts, summary.listed))
    log.info("split:\n%s", reports.split_table(counts).to_string())
    figures = {f"{name}_{label}": int(counts.loc[label, name])
               for name in split.SPLITS for label in CLASS_NAMES}
    figures.update({f"excluded_{reason}": int(n) for reason, n in summary.exclusions.items()})
    figures["listed"] = summary.listed
    return figures
