"""Whether two split folders (`admod split --out`) hold the same images in the same splits with
the same decoded pixels, whatever bytes their shards store them as.

For a change to the split's storage (re-encoding, record layout, sharding): split the same data
with the code before and after, then

    .venv/bin/python bench/compare_splits.py BEFORE_OUT AFTER_OUT

Each record's image is decoded by admod.decoding (what training and serving read), and the
manifests' decisions (split or exclusion reason per listed file) are compared too. Exit status
0 when both agree, 1 with the first differences otherwise.
"""

import argparse
import hashlib
import os
import sys

import pandas as pd

from admod import decoding, records, split

DECISION_COLUMNS = ["uri", "label", "sha256", "split", "reason"]


def decoded_images(out: str) -> pd.DataFrame:
    """sha256, split and the sha256 of its decoded RGB pixels (with their shape), per record."""
    import tensorflow as tf

    def decode(serialized):
        example = records.parse(serialized)
        return example["sha256"], decoding.decode_rgb(example["image"])

    rows = []
    for name in split.SPLITS:
        shards = records.shard_files(os.path.join(out, name))
        decoded = tf.data.TFRecordDataset(shards).map(decode, num_parallel_calls=tf.data.AUTOTUNE)
        for sha256, pixels in decoded.as_numpy_iterator():
            digest = hashlib.sha256(pixels.tobytes()).hexdigest()
            rows.append({"sha256": sha256.decode(), "split": name,
                         "pixels": f"{pixels.shape}:{digest}"})
    return pd.DataFrame(rows, columns=["sha256", "split", "pixels"]).sort_values(
        "sha256", ignore_index=True)


def decisions(out: str) -> pd.DataFrame:
    return split.read_manifest(os.path.join(out, "manifest.csv"))[DECISION_COLUMNS].sort_values(
        "uri", ignore_index=True)


def differences(name: str, before: pd.DataFrame, after: pd.DataFrame) -> int:
    if before.equals(after):
        print(f"{name}: the same {len(before)} rows")
        return 0
    both = before.merge(after, how="outer", indicator=True)
    differing = both[both["_merge"] != "both"]
    print(f"{name}: {len(differing)} rows differ (of {len(before)} before, {len(after)} after)")
    print(differing.head(20).to_string())
    return len(differing)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before")
    parser.add_argument("after")
    args = parser.parse_args()
    differ = differences("manifest decisions", decisions(args.before), decisions(args.after))
    differ += differences("images (split, decoded pixels)", decoded_images(args.before),
                          decoded_images(args.after))
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
