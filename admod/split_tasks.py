"""The fanned-out split's tasks before its last: list-images, check-images, gather-parts and
merge-bucket (paths in, files out). Apart from split_steps (the one-task split and the last task,
which write the report) so that these tasks import neither TensorFlow nor matplotlib nor pandas:
each of the many pays only for what it runs (`tests/admod/test_split.py` checks the imports).
"""

import json
import os
import tempfile

from admod import records, split, storage
from admod.errors import AdmodError
from admod.options import ImageRules, SplitOptions


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
        json.dump({"bucket": int(bucket), "parts": part_uris, "summary": summary.to_json(),
                   "shards": shards}, f)
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
    gathered = storage.read_json(path)
    return gathered["parts"], split.NearCopies.from_json(gathered["near_copies"])
