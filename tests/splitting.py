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
