"""Near-copies across the split: how many validation images have a near-copy in train, by
content hash alone (before admod.near_copies) and with near-copy groups (after), on a corpus
where each creative appears in several variants. Run from the repository root:

    .venv/bin/python bench/near_copies.py --creatives 400

Each demo creative (admod.demo_data, both classes, several shapes) is written as itself and as
`--variants` of: resized to 150%, recompressed as JPEG quality 55, re-encoded as PNG, cropped by
4% on every side. The split is admod's own (split.run_split, the method's val_fraction 0.2).
"""

import argparse
import io
import os
import sys
import tempfile
import time

from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from admod import split  # noqa: E402
from admod.defaults import CLASS_NAMES  # noqa: E402
from admod.demo_data import write_demo_data  # noqa: E402
from tests.support import splitting  # noqa: E402

VARIANTS = ("resized", "recompressed", "png", "cropped")


def variant(image: Image.Image, kind: str) -> tuple[bytes, str]:
    """The bytes and extension of one variant of a creative."""
    out = io.BytesIO()
    width, height = image.size
    if kind == "resized":
        image.resize((width * 3 // 2, height * 3 // 2)).save(out, "PNG")
    elif kind == "recompressed":
        image.save(out, "JPEG", quality=55)
        return out.getvalue(), "jpg"
    elif kind == "cropped":
        cut = max(1, min(width, height) * 4 // 100)
        image.crop((cut, cut, width - cut, height - cut)).save(out, "PNG")
    else:
        image.save(out, "PNG")
    return out.getvalue(), "png"


def corpus(root: str, creatives: int, variants: int, seed: int = 0) -> None:
    """`creatives` demo ads, each as itself and `variants` variants: creative-NNNN-<kind>."""
    with tempfile.TemporaryDirectory() as originals:
        write_demo_data(originals, creatives, seed=seed, formats=("jpg",))
        for label in CLASS_NAMES:
            os.makedirs(os.path.join(root, label))
            for name in sorted(os.listdir(os.path.join(originals, label))):
                stem = os.path.splitext(name)[0]
                data = open(os.path.join(originals, label, name), "rb").read()
                with open(os.path.join(root, label, f"{stem}-original.jpg"), "wb") as f:
                    f.write(data)
                image = Image.open(io.BytesIO(data)).convert("RGB")
                for kind in VARIANTS[:variants]:
                    content, extension = variant(image, kind)
                    with open(os.path.join(root, label, f"{stem}-{kind}.{extension}"), "wb") as f:
                        f.write(content)


def creative_of(uri: str) -> str:
    return uri.rsplit("-", 1)[0]


def leakage(manifest, split_column: str) -> tuple[int, int]:
    """(validation images with a variant of their creative in train, validation images)."""
    used = manifest[manifest[split_column].isin(split.SPLITS)]
    creatives = used.assign(creative=used["uri"].map(creative_of))
    in_train = set(creatives.loc[creatives[split_column] == split.TRAIN, "creative"])
    validation = creatives[creatives[split_column] == split.VALIDATION]
    return int(validation["creative"].isin(in_train).sum()), len(validation)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creatives", type=int, default=400)
    parser.add_argument("--variants", type=int, default=4, choices=range(2, 5))
    parser.add_argument("--seed", type=int, default=42, help="the split's seed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        corpus(os.path.join(work, "ads"), args.creatives, args.variants)
        config = splitting.split_config(seed=args.seed)
        out = {name: os.path.join(work, "out", name) for name in split.SPLITS}
        started = time.monotonic()
        manifest = splitting.run_split(os.path.join(work, "ads"), out, config)
        took = time.monotonic() - started
    options = config["options"]
    manifest["by_content_hash"] = [
        split.assign_split(h, options.seed, options.val_fraction, options.test_fraction)
        if s else "" for h, s in zip(manifest["sha256"], manifest["split"], strict=True)]
    before, after = leakage(manifest, "by_content_hash"), leakage(manifest, "split")
    creatives = manifest["uri"].map(creative_of)
    mixed = manifest[manifest["split"] != ""].groupby(creatives)["split"].nunique()
    print(f"{len(manifest)} images ({args.creatives} creatives x {args.variants + 1} versions), "
          f"split in {took:.1f} s:")
    print(f"  validation images with a near-copy in train, by content hash alone: "
          f"{before[0]} of {before[1]} ({before[0] / max(1, before[1]):.1%})")
    print(f"  with near-copy groups: {after[0]} of {after[1]} "
          f"({after[0] / max(1, after[1]):.1%}); creatives split across splits: "
          f"{int((mixed > 1).sum())} of {len(mixed)}")


if __name__ == "__main__":
    main()
