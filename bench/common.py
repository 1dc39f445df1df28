"""Shared by the benchmarks: a folder of generated JPEG ads and its shards."""

import os
import sys
import tempfile

# The repository root, so that `tests` imports when a bench runs as the docs say
# (.venv/bin/python bench/NAME.py from the root, which puts bench/ first on the path).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from admod import split  # noqa: E402
from admod.demo_data import write_demo_data  # noqa: E402
from tests.support import splitting  # noqa: E402


def jpeg_folder(count: int, scale: float = 3.0, seed: int = 0) -> str:
    """`count` JPEG demo ads (~300-900 px at scale 3) in the class-folder layout, made once."""
    folder = os.path.join(tempfile.gettempdir(), f"admod-bench-jpeg-{count}-{scale}")
    marker = os.path.join(folder, ".complete")
    if not os.path.exists(marker):
        write_demo_data(folder, count, seed=seed, scales=(scale,), formats=("jpg",))
        open(marker, "w").close()
    return folder


def shards(folder: str) -> dict[str, str]:
    """The split step's shards of `folder`, made once."""
    from admod import split_steps

    out = folder + "-shards"
    out_dirs = {name: os.path.join(out, name) for name in split.SPLITS}
    if not os.path.exists(os.path.join(out, ".complete")):
        config = splitting.split_config(seed=0)  # the method's split
        split_steps.split_step(data_root=folder, out_dirs=out_dirs,
                         manifest_path=os.path.join(out, "manifest.csv"),
                         report_path=os.path.join(out, "report.md"), **config)
        open(os.path.join(out, ".complete"), "w").close()
    return out_dirs
