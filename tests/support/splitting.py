"""The split on one machine, its manifest read back as a table (test data is small)."""

import os

from admod import split
from admod.options import ImageRules, SplitOptions, parameter_fields


def split_config(**values) -> dict:
    """{'options': SplitOptions, 'rules': ImageRules} from one set of keyword values, each to
    the options that have it (shard_size to both): what the split's steps take."""
    rule_names = set(parameter_fields(ImageRules)) | {"workers"}
    shared = {"shard_size": values.pop("shard_size")} if "shard_size" in values else {}
    rules = {name: values.pop(name) for name in list(values) if name in rule_names}
    return {"options": SplitOptions(**values, **shared), "rules": ImageRules(**rules, **shared)}


def run_split(data_root: str, out_dirs: dict[str, str], config: dict, partitions: int = 1):
    """split.run_split with the manifest beside the shard folders; returns the manifest.
    `config`: split_config's."""
    manifest_path = os.path.join(os.path.dirname(out_dirs[split.TRAIN]), "manifest.csv")
    split.run_split(str(data_root), out_dirs, manifest_path, config["options"], config["rules"],
                    partitions)
    return split.read_manifest(manifest_path)


def checked_parts(data_root: str, work: str, config: dict, partitions: int) -> list[str]:
    """Each listing partition of `data_root` checked into <work>/part-N, as check-images tasks
    do; returns the parts' folders."""
    return split.list_and_check(data_root, work, config["rules"], partitions)


def first_bucket_with_images(part_dir: str) -> tuple[int, int]:
    """(bucket, images) of a checked part's first bucket that holds images. Which images a part
    holds depends on their paths (split.partition_of), under each run's tmp_path: a test names
    no fixed bucket."""
    bucket, count = next(iter(split.read_census(part_dir)["buckets"].items()))
    return int(bucket), count


def fanned_out_merge(part_uris: list[str], data_root: str, out: str, config: dict) -> dict:
    """The fanned-out merge as its tasks run it: a merge-bucket per bucket (its folders under
    <out>/bucket-BB), then the split's last task into <out>/split; returns the split's
    figures."""
    from admod import split_steps, split_tasks

    os.makedirs(out, exist_ok=True)
    gathered = os.path.join(out, "gathered.json")
    split_tasks.gather_parts_step(part_uris=part_uris, gathered_path=gathered,
                                  options=config["options"])
    part_uris, grouped = split_tasks.read_gathered(gathered)
    result_dirs = []
    for bucket in range(split.BUCKETS):
        folder = os.path.join(out, f"bucket-{bucket:02d}")
        out_dirs = {name: os.path.join(folder, name) for name in split.SPLITS}
        result_dirs.append(os.path.join(folder, "merged"))
        split_tasks.merge_bucket_step(part_uris=part_uris, bucket=f"{bucket:02d}",
                                      out_dirs=out_dirs, out_uris=out_dirs,
                                      result_dir=result_dirs[-1], options=config["options"],
                                      grouped=grouped)
    final = os.path.join(out, "split")
    os.makedirs(final, exist_ok=True)
    return split_steps.finish_split_step(
        result_dirs=result_dirs, part_uris=part_uris, data_root=data_root,
        out_dirs={name: os.path.join(final, name) for name in split.SPLITS},
        manifest_path=os.path.join(final, "manifest.csv"),
        report_path=os.path.join(final, "report.md"), options=config["options"],
        rules=config["rules"], grouped=grouped)
