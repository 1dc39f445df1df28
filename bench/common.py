"""Shared by the benchmarks: a folder of generated JPEG ads and its shards."""

import os
import tempfile

import numpy as np

from admod import split
from admod.defaults import CLASS_NAMES
from admod.demo_data import draw_ad


def jpeg_folder(count: int, scale: float = 3.0, seed: int = 0) -> str:
    """`count` JPEG ads (~300-900 px) in the class-folder layout, generated once."""
    folder = os.path.join(tempfile.gettempdir(), f"admod-bench-jpeg-{count}-{scale}")
    marker = os.path.join(folder, ".complete")
    if not os.path.exists(marker):
        rng = np.random.default_rng(seed)
        for name in CLASS_NAMES:
            os.makedirs(os.path.join(folder, name), exist_ok=True)
        for i in range(count):
            label = int(rng.random() < 0.28)
            draw_ad(rng, label, scale).save(
                os.path.join(folder, CLASS_NAMES[label], f"ad_{i:06d}.jpg"), quality=90)
        open(marker, "w").close()
    return folder


def shards(folder: str) -> dict[str, str]:
    """The split step's shards of `folder`, made once."""
    from admod import steps

    out = folder + "-shards"
    out_dirs = {name: os.path.join(out, name) for name in split.SPLITS}
    if not os.path.exists(os.path.join(out, ".complete")):
        config = split.SplitConfig(val_fraction=0.2, test_fraction=0.0, seed=0, min_side=32,
                                   max_pixels=50_000_000)
        steps.split_step(folder, out_dirs, os.path.join(out, "manifest.csv"),
                         os.path.join(out, "report.md"), config)
        open(os.path.join(out, ".complete"), "w").close()
    return out_dirs
