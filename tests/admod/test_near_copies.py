"""Near-copies kept on one side of the split (admod.near_copies): the same creative resized,
recompressed, re-encoded or slightly cropped lands in one split, and stays there as data grows;
flat images, whose perceptual hash says nothing, are never grouped."""

import shutil

import numpy as np
import pytest
from PIL import Image

from admod import images, near_copies, split
from bench import near_copies as bench
from tests.support import splitting

SEED = 3  # 11 of the 40 creatives in validation


@pytest.fixture(scope="module")
def variants_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("near-copies") / "ads"
    bench.corpus(str(root), creatives=40, variants=4, seed=1)
    return root


def _split(root, out):
    """The split as `admod split` makes it: shards, manifest.csv and report.md in `out`."""
    from admod import split_steps

    config = splitting.split_config(seed=SEED)
    split_steps.split_into_folder(data_root=str(root), out=str(out), **config)
    return split.read_manifest(str(out / "manifest.csv")), config["options"]


def test_every_creatives_variants_land_in_one_split(variants_root, tmp_path):
    manifest, options = _split(variants_root, tmp_path / "out")
    manifest["by_content_hash"] = [
        split.assign_split(h, options.seed, options.val_fraction, options.test_fraction)
        for h in manifest["sha256"]]
    assert bench.leakage(manifest, "by_content_hash")[0] > 0  # content hashes alone leak
    assert bench.leakage(manifest, "split") == (0, (manifest["split"] == "validation").sum())
    per_creative = manifest.groupby(manifest["uri"].map(bench.creative_of))["split"].nunique()
    assert (per_creative == 1).all()
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Near-copies: 40 groups of 200 images, each group in one split" in report


def test_an_image_joining_a_group_takes_its_split_unless_it_becomes_its_anchor(
        variants_root, tmp_path):
    before, _ = _split(variants_root, tmp_path / "before")
    grown = tmp_path / "grown"
    shutil.copytree(variants_root, grown)
    originals = sorted(p for p in (grown / "allowed_ads").iterdir()
                       if p.name.endswith("-original.jpg"))[:10]
    for path in originals:  # a new version of ten creatives: rotated by 1 degree
        Image.open(path).rotate(1, fillcolor="white").save(str(path).replace("-original.jpg",
                                                                             "-new.png"))
    after, _ = _split(grown, tmp_path / "after")
    after["uri"] = after["uri"].str.replace(str(grown), str(variants_root))
    creative = before["uri"].map(bench.creative_of)
    anchors = before.groupby(creative)["sha256"].min()
    moved = set()
    for path in originals:
        new = after[after["uri"] == str(path).replace(str(grown), str(variants_root))
                    .replace("-original.jpg", "-new.png")].iloc[0]
        old = before[creative == bench.creative_of(new["uri"])]
        if new["sha256"] > anchors[bench.creative_of(new["uri"])]:
            assert new["split"] == old["split"].iloc[0]  # joins the group where it is
        else:  # the new anchor: the group is drawn again from it
            assert new["split"] == split.assign_split(new["sha256"], SEED, 0.2, 0.0)
            moved.add(bench.creative_of(new["uri"]))
    merged = before.merge(after, on="uri", suffixes=("_before", "_after"))
    changed = merged[merged["split_before"] != merged["split_after"]]
    assert set(changed["uri"].map(bench.creative_of)) <= moved  # nothing else moved


def _key(image):
    return near_copies.keys_of([images.grey_sample(image, near_copies.SAMPLE_SIDE)])[0]


def test_the_key_is_imagehash_phash_of_the_same_pixels():
    import imagehash

    rng = np.random.default_rng(0)
    for _ in range(50):
        pixels = rng.integers(0, 256, (32, 32), dtype=np.uint8)
        assert near_copies.phash_hex(pixels.astype(np.float64)) == str(
            imagehash.phash(Image.fromarray(pixels)))


def test_a_rotated_copy_by_exif_gets_the_key_of_the_upright_image(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 256, (60, 120, 3), dtype=np.uint8)
    upright = Image.fromarray(pixels)
    upright.save(tmp_path / "upright.jpg", quality=95)
    exif = Image.Exif()
    exif[images.EXIF_ORIENTATION] = 6  # stored turned: shown rotated 90 degrees clockwise
    upright.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "turned.jpg", quality=95,
                                                      exif=exif)
    keys = [_key(Image.open(tmp_path / name))
            for name in ("upright.jpg", "turned.jpg")]
    assert keys[0] and list(near_copies.groups(keys)) == [0, 0]


def test_a_flat_image_gets_no_key_and_is_never_grouped():
    for colour in ("white", (200, 30, 30), (30, 30, 200)):
        assert _key(Image.new("RGB", (120, 60), colour)) == ""
    pixels = np.random.default_rng(0).integers(0, 256, (60, 120, 3), dtype=np.uint8)
    keys = _key(Image.fromarray(pixels)).split()
    assert len(keys) == len(near_copies.CROPS) and all(len(k) == 16 for k in keys)


def test_keys_within_the_distance_are_linked_transitively_and_others_not():
    base, eight = 0x0123456789ABCDEF, 0b11111111
    keys = [f"{base:016x}", f"{base ^ eight:016x}",  # 8 bits from the first
            f"{2**63:016x} {base ^ eight ^ (eight << 20):016x}",  # its 2nd: 8 from the second
            f"{base ^ (2**64 - 1):016x}"]  # every bit flipped
    assert list(near_copies.groups(keys)) == [0, 0, 0, 3]
    assert list(near_copies.groups(keys, max_distance=7)) == [0, 1, 2, 3]
    own = {"c": "train", "a": "validation", "b": "test", "d": "train"}
    splits, groups = near_copies.group_splits(["c", "a", "b", "d"], keys, own.get)
    # the anchor is the smallest sha256, "a": its own split is the group's
    assert splits == {"c": "validation", "a": "validation", "b": "validation"}
    assert groups == [[0, 1, 2]]


def test_many_equal_keys_are_one_group_without_comparing_every_pair():
    keys = ["0123456789abcdef"] * 5000 + ["fedcba9876543210"]
    assert list(near_copies.groups(keys)) == [0] * 5000 + [5000]


def test_each_manifest_row_carries_the_key_of_its_own_image(variants_root, tmp_path):
    """Keys are computed in batches while records are written at once: each row, across the
    batches (200 images), still gets its own image's key."""
    manifest, _ = _split(variants_root, tmp_path / "out")
    assert len(manifest) > split._PartWriter.KEY_BATCH
    for uri, key in zip(manifest["uri"], manifest["near_copy_key"], strict=True):
        with Image.open(uri) as image:
            assert key == _key(image), uri
