"""The split on one machine, its manifest read back as a table (test data is small)."""

import os

from admod import split


def run_split(data_root: str, out_dirs: dict[str, str], config: split.SplitConfig,
              partitions: int = 1):
    """split.run_split with the manifest beside the shard folders; returns the manifest."""
    manifest_path = os.path.join(os.path.dirname(out_dirs[split.TRAIN]), "manifest.csv")
    split.run_split(str(data_root), out_dirs, manifest_path, config, partitions)
    return split.read_manifest(manifest_path)
