import dataclasses
import json
import hashlib
import io
import os
import time
import re
import shutil

import pandas as pd
import pytest
import tensorflow as tf
from PIL import Image

from admod import images, records, split
from admod.defaults import CLASS_NAMES
from admod.errors import AdmodError
from tests.support.splitting import run_split
from tests.support import splitting
from tests.support.imports import loaded_by


def _config(**overrides):
    values = dict(val_fraction=0.2, test_fraction=0.0, seed=7, min_image_side=32,
                  max_image_pixels=10**7)
    values.update(overrides)
    return splitting.split_config(**values)


def _run(root, out, **overrides):
    out_dirs = {name: os.path.join(out, name) for name in split.SPLITS}
    return run_split(str(root), out_dirs, _config(**overrides)), out_dirs


def _fake_hashes(n, salt):
    return [hashlib.sha256(f"{salt}{i}".encode()).hexdigest() for i in range(n)]


def test_stratified_within_one_point_at_scale():
    counts = {"allowed_ads": 36_000, "not_allowed_ads": 14_000}
    overall = counts["not_allowed_ads"] / sum(counts.values())
    rows = [(label, split.assign_split(h, 42, 0.2, 0.1))
            for label, n in counts.items() for h in _fake_hashes(n, label)]
    table = pd.crosstab(*zip(*rows, strict=True))
    for name in split.SPLITS:
        share = table.loc["not_allowed_ads", name] / table[name].sum()
        assert abs(share - overall) < 0.01, name
    fractions = table.sum() / table.values.sum()
    assert abs(fractions["validation"] - 0.2) < 0.01 and abs(fractions["test"] - 0.1) < 0.01


def test_split_is_a_function_of_content_and_seed():
    h = _fake_hashes(500, "x")
    first = [split.assign_split(x, 1, 0.2, 0.0) for x in h]
    assert first == [split.assign_split(x, 1, 0.2, 0.0) for x in h]
    assert first != [split.assign_split(x, 2, 0.2, 0.0) for x in h]


def test_disjoint_covering_and_stable_under_growth(demo_root, tmp_path):
    manifest, out_dirs = _run(demo_root, tmp_path / "a")
    used = manifest[manifest["split"] != ""]
    assert len(used) == len(manifest) == 60  # every image placed exactly once
    shard_hashes = {name: [records.parse(r)["sha256"].numpy().decode() for r in
                           tf.data.TFRecordDataset(records.shard_files(out_dirs[name]))]
                    for name in ("train", "validation")}
    assert set(shard_hashes["train"]).isdisjoint(shard_hashes["validation"])
    assert sorted(sum(shard_hashes.values(), [])) == sorted(used["sha256"])

    grown = tmp_path / "grown"
    shutil.copytree(demo_root, grown)
    for i in range(15):
        image = Image.effect_noise((48, 48), 40 + i).convert("RGB")
        image.save(grown / CLASS_NAMES[i % 2] / f"new{i}.png")
    again, _ = _run(grown, tmp_path / "b")
    before = manifest.set_index("sha256")["split"]
    after = again.set_index("sha256")["split"]
    assert (after[before.index] == before).all()  # no existing image moved
    assert len(again) == 75


def _write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def _png(colour, size=(48, 48)):
    import io
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def _distinct_images(root, count, name="ok{}.png"):
    """`count` distinct PNGs per class, the classes' colours apart."""
    for label in CLASS_NAMES:
        for i in range(count):
            green = 100 if label == CLASS_NAMES[0] else 200
            _write(root / label / name.format(i), _png((i * 20, green, 7)))


@pytest.fixture
def messy_root(tmp_path):
    root = tmp_path / "messy"
    _distinct_images(root, 12)
    a = root / CLASS_NAMES[0]
    _write(a / "empty.jpg", b"")
    _write(a / "text.png", b"not an image at all")
    _write(a / "truncated.png", _png((1, 2, 3), (64, 64))[:60])
    _write(a / "tiny.png", _png((5, 5, 5), (20, 20)))
    _write(a / "huge.png", _png((9, 9, 9), (400, 400)))
    _write(a / "notes.txt", b"readme")
    _write(a / "copy_of_ok1.png", _png((20, 100, 7)))  # duplicate of ok1
    conflict = _png((250, 250, 250))
    _write(a / "conflict.png", conflict)
    _write(root / CLASS_NAMES[1] / "conflict_too.png", conflict)
    return root


def test_exclusions_duplicates_and_conflicts(messy_root, tmp_path):
    before = {p: p.read_bytes() for p in messy_root.rglob("*") if p.is_file()}
    manifest, out_dirs = _run(messy_root, tmp_path / "out", max_image_pixels=300 * 300,
                              val_fraction=0.4)
    short = manifest["uri"].map(
        lambda uri: os.path.basename(uri) if f"/{CLASS_NAMES[0]}/" in uri else "other")
    reason = manifest[short != "other"].set_index(short[short != "other"])["reason"]
    assert reason["empty.jpg"] == images.EMPTY
    assert reason["text.png"] == images.NOT_AN_IMAGE
    assert reason["truncated.png"] == images.CORRUPT
    assert reason["tiny.png"] == images.TOO_SMALL
    assert reason["huge.png"] == images.TOO_MANY_PIXELS
    assert reason["notes.txt"] == images.NOT_IMAGE_EXTENSION
    assert {reason["copy_of_ok1.png"], reason["ok1.png"]} == {images.DUPLICATE, ""}  # kept once
    assert reason["conflict.png"] == images.LABEL_CONFLICT
    conflict_too = manifest["uri"].str.endswith("conflict_too.png")
    assert manifest.loc[conflict_too, "reason"].item() == images.LABEL_CONFLICT
    conflict_hash = manifest.loc[manifest["reason"] == images.LABEL_CONFLICT, "sha256"].iloc[0]
    in_shards = {records.parse(r)["sha256"].numpy().decode() for name in ("train", "validation")
                 for r in tf.data.TFRecordDataset(records.shard_files(out_dirs[name]))}
    assert conflict_hash not in in_shards and len(in_shards) == 24
    after = {p: p.read_bytes() for p in messy_root.rglob("*") if p.is_file()}
    assert after == before  # source data is read-only to the pipeline


def test_missing_class_folder(demo_root, tmp_path):
    root = tmp_path / "one_class"
    shutil.copytree(os.path.join(demo_root, CLASS_NAMES[0]), root / CLASS_NAMES[0])
    with pytest.raises(AdmodError, match="not_allowed_ads' is missing"):
        _run(root, tmp_path / "out")


def test_empty_class(demo_root, tmp_path):
    root = tmp_path / "empty_class"
    shutil.copytree(os.path.join(demo_root, CLASS_NAMES[0]), root / CLASS_NAMES[0])
    os.makedirs(root / CLASS_NAMES[1])
    _write(root / CLASS_NAMES[1] / "readme.txt", b"x")
    with pytest.raises(AdmodError, match="holds no image files"):
        _run(root, tmp_path / "out")


def test_too_few_for_validation(tmp_path):
    root = tmp_path / "few"
    for label in CLASS_NAMES:
        _write(root / label / "one.png", _png((1, 2, 3) if label == CLASS_NAMES[0] else (3, 2, 1)))
    with pytest.raises(AdmodError, match="too few to put any in"):
        _run(root, tmp_path / "out")


def test_missing_data_root(tmp_path):
    with pytest.raises(AdmodError, match="is not a folder"):
        _run(tmp_path / "nowhere", tmp_path / "out")


@pytest.mark.parametrize("overrides", [{"val_fraction": 0},
                                       {"val_fraction": 0.7, "test_fraction": 0.3},
                                       {"min_image_side": 0}])
def test_bad_parameters(demo_root, tmp_path, overrides):
    with pytest.raises(AdmodError, match="="):
        _run(demo_root, tmp_path / "out", **overrides)


def _split_files(folder) -> dict[str, bytes]:
    return {os.path.relpath(os.path.join(d, f), folder): open(os.path.join(d, f), "rb").read()
            for d, _, files in os.walk(folder) for f in files}


def test_any_number_of_partitions_gives_the_same_split(messy_root, tmp_path, monkeypatch,
                                                      caplog):
    """Duplicates and label conflicts whose copies land in different partitions (file i goes
    to partition i mod N) are settled exactly as with one: identical manifest and shards,
    checked by three processes and merged by the same three (a bucket each at a time)."""
    config = _config(max_image_pixels=300 * 300, val_fraction=0.4, shard_size=5)
    monkeypatch.setattr(split, "PARALLEL_MERGE_BYTES", 0)  # merge processes even for this
    monkeypatch.setattr(split, "MIN_FILES_PER_CHECK_PROCESS", 1)  # and check processes
    caplog.set_level("INFO", logger="admod.split")
    results = {}
    for partitions, workers in ((1, 2), (3, 6)):  # CPUs: workers // 2
        out = tmp_path / f"n{partitions}"
        out_dirs = {name: str(out / name) for name in split.SPLITS}
        rules = dataclasses.replace(config["rules"], workers=workers)
        summary = split.run_split(str(messy_root), out_dirs, str(out / "manifest.csv"),
                                  config["options"], rules, partitions=partitions)
        results[partitions] = (summary, _split_files(out))
    (one, one_files), (three, three_files) = results[1], results[3]
    assert any("(3 partitions in 3 processes)" in m for m in caplog.messages)
    assert one_files == three_files  # manifest and every shard, byte for byte
    assert one.counts.equals(three.counts) and one.exclusions.equals(three.exclusions)
    assert one.duplicates == three.duplicates and one.conflicts == three.conflicts
    assert one.fingerprints == three.fingerprints
    assert one.exclusions[images.DUPLICATE] == 1 and one.exclusions[images.LABEL_CONFLICT] == 2
    manifest = split.read_manifest(str(tmp_path / "n1" / "manifest.csv"))
    reasons = manifest.loc[manifest["reason"] != "", "reason"].value_counts().sort_index()
    assert one.exclusions.to_dict() == reasons.to_dict()  # every excluded file, no usable one
    listing = sorted(p for p in messy_root.rglob("*") if p.is_file())
    copies = [i for i, p in enumerate(listing) if p.name in ("ok1.png", "copy_of_ok1.png")]
    conflicts = [i for i, p in enumerate(listing) if p.name.startswith("conflict")]
    assert len({i % 3 for i in copies}) == 2 and len({i % 3 for i in conflicts}) == 2
    buckets = {name.split("-")[1] for name in one_files if name.startswith("train/")}
    assert len(buckets) >= 8  # the images were spread over the buckets merged in parallel
    merges = [r.getMessage() for r in caplog.records if r.getMessage().startswith("merged")]
    assert merges == [f"merged {split.BUCKETS} buckets in 1 process(es)",
                      f"merged {split.BUCKETS} buckets in 3 process(es)"]


def test_buckets_are_ranges_of_the_content_hash():
    """Bucket b holds hashes below bucket b + 1's: the buckets' sorted hashes, one after the
    other, are all of them sorted."""
    hashes = sorted(_fake_hashes(2000, "b"))
    buckets = [split.bucket_of(h) for h in hashes]
    assert buckets == sorted(buckets) and set(buckets) == set(range(split.BUCKETS))
    assert split.bucket_of("0" * 64) == 0 and split.bucket_of("f" * 64) == split.BUCKETS - 1


def test_duplicates_are_reported_in_listing_order_across_buckets(tmp_path):
    root = tmp_path / "dups"
    _distinct_images(root, 10, "a{}.png")
    _distinct_images(root, 10, "b{}.png")  # b{i} a copy of a{i}
    out_dirs = {name: str(tmp_path / "out" / name) for name in split.SPLITS}
    summary = split.run_split(str(root), out_dirs, str(tmp_path / "out" / "manifest.csv"),
                              **_config(val_fraction=0.4))
    expected = [str(root / label / f"b{i}.png") for label in sorted(CLASS_NAMES)
                for i in range(10)]
    assert summary.duplicates == expected
    assert len({split.bucket_of(h) for h in read_hashes(out_dirs)}) > 4


def read_hashes(out_dirs) -> list[str]:
    return [records.parse(r)["sha256"].numpy().decode() for folder in out_dirs.values()
            for r in tf.data.TFRecordDataset(records.shard_files(folder))]


def test_a_partition_checked_by_another_layout_is_refused_by_name(messy_root, tmp_path):
    part = tmp_path / "old-part"
    (part / "shards").mkdir(parents=True)
    (part / "manifest.csv").write_text("index,uri\n")
    out_dirs = {name: str(tmp_path / "out" / name) for name in split.SPLITS}
    with pytest.raises(AdmodError, match=f"Checked partition '{part}' lacks excluded.csv, "
                                         "census.json or near_copy_keys.csv"):
        split.merge_parts([str(part)], out_dirs, str(tmp_path / "m.csv"), _config()["options"])
    assert not (tmp_path / "out").exists() and not (tmp_path / "m.csv").exists()


def _many_files(root, count):
    """`count` files the split lists but need not open (not images), and a few images."""
    for label in CLASS_NAMES:
        for i in range(6):
            green = 100 + 50 * (label == CLASS_NAMES[1])
            _write(root / label / f"ad{i}.png", _png((i * 40, green, 7)))
        for i in range(count // 2):
            _write(root / label / f"notes{i:06d}.txt", b"")


def _peak_traced_memory(root, out) -> int:
    import tracemalloc

    out_dirs = {name: str(out / name) for name in split.SPLITS}
    tracemalloc.start()
    try:
        split.run_split(str(root), out_dirs, str(out / "manifest.csv"),
                        **_config(val_fraction=0.5, workers=1))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_split_memory_stays_flat_as_the_listing_grows(tmp_path):
    """Listing, checking and merging stream: four times the files, about the same peak."""
    _many_files(tmp_path / "small", 4_000)
    _many_files(tmp_path / "large", 16_000)
    small = _peak_traced_memory(tmp_path / "small", tmp_path / "out-small")
    large = _peak_traced_memory(tmp_path / "large", tmp_path / "out-large")
    assert large < small * 1.25 + 2**20, (small, large)


def _assignment_written_out(sha256: str, seed: int, val_fraction: float,
                            test_fraction: float) -> str:
    """The method's assignment, written out here independently of admod.split: a hash of the
    seed and the content, as a fraction of 2**64, against test, then validation."""
    digest = hashlib.sha256(f"{seed}:{sha256}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2 ** 64
    return "test" if u < test_fraction else "validation" if u < test_fraction + val_fraction \
        else "train"


def test_the_split_step_assigns_every_image_of_every_class_by_the_method(messy_root, tmp_path,
                                                                        demo_root):
    """Through the split as a run executes it, not the assignment helper: each usable image's
    split is the written-out assignment, whatever its class, so every class is split with the
    same fractions (stratified)."""
    for root in (demo_root, messy_root):
        manifest, _ = _run(root, tmp_path / os.path.basename(str(root)), val_fraction=0.3,
                           test_fraction=0.1, max_image_pixels=300 * 300)
        used = manifest[manifest["split"] != ""]
        assert set(used["label"]) == set(CLASS_NAMES) and len(used) > 20
        expected = [_assignment_written_out(h, 7, 0.3, 0.1) for h in used["sha256"]]
        assert used["split"].tolist() == expected


def test_a_manifest_row_has_a_split_or_a_reason_never_both(messy_root, tmp_path):
    manifest, _ = _run(messy_root, tmp_path / "out", max_image_pixels=300 * 300, val_fraction=0.4)
    excluded = manifest["reason"] != ""
    assert excluded.sum() >= 8 and (~excluded).sum() >= 20
    assert (manifest.loc[excluded, "split"] == "").all()
    assert manifest.loc[~excluded, "split"].isin(split.SPLITS).all()


def test_the_split_steps_never_import_tensorflow():
    """A check-images task starts without TensorFlow's seconds and hundreds of MiB."""
    assert loaded_by("import admod.split_steps, admod.options, admod.logs",
                      ("tensorflow", "keras")) == [False, False]


def test_a_check_or_merge_process_starts_without_pandas():
    """The processes the split spawns import admod.split alone: pandas would cost each one
    about 0.4 s of this machine's CPU before its first image (bench/split.py)."""
    assert loaded_by("import admod.split", ("pandas", "tensorflow")) == [False, False]


@pytest.mark.parametrize("component", ["list_images", "check_images", "gather_parts",
                                       "merge_bucket"])
def test_the_fanned_out_tasks_start_without_tensorflow_matplotlib_or_pandas(component):
    """Each of the many list, check and merge tasks imports its component and admod.split_tasks:
    split_steps' report (matplotlib, pandas) cost each of them 1.2 s before."""
    heavy = ("tensorflow", "matplotlib", "pandas")
    assert loaded_by(f"import admod.components.{component}, admod.split_tasks, admod.logs, "
                      "admod.options", heavy) == [
        False, False, False]


def test_no_more_check_processes_than_the_files_and_cpus_can_use(messy_root, tmp_path, caplog):
    """--split-workers 64 on 20 images started 65 processes (2.3 GB) for 3 s of work."""
    caplog.set_level("INFO", logger="admod.split")
    out_dirs = {name: str(tmp_path / "out" / name) for name in split.SPLITS}
    config = _config(max_image_pixels=300 * 300, val_fraction=0.4, workers=4)
    split.run_split(str(messy_root), out_dirs, str(tmp_path / "out" / "manifest.csv"),
                    **config, partitions=64)
    files = sum(1 for p in messy_root.rglob("*") if p.is_file())
    assert (f"checking 64 partitions in 1 process(es): {files} files on 2 CPU(s) need no more"
            in caplog.messages)


def test_a_small_merge_stays_in_one_process(messy_root, tmp_path, caplog):
    """Under PARALLEL_MERGE_BYTES of checked data, starting merge processes costs what they
    save: two asked for, one used (the output is the same either way, tested above)."""
    caplog.set_level("INFO", logger="admod.split")
    out_dirs = {name: str(tmp_path / "out" / name) for name in split.SPLITS}
    split.run_split(str(messy_root), out_dirs, str(tmp_path / "out" / "manifest.csv"),
                    **_config(max_image_pixels=300 * 300, val_fraction=0.4, workers=4))
    assert f"merged {split.BUCKETS} buckets in 1 process(es)" in caplog.messages


def _split_in_one_task(data_root, out, config, partitions) -> dict:
    from admod import split_steps

    return split_steps.split_step(
        data_root=data_root, out_dirs={name: os.path.join(out, name) for name in split.SPLITS},
        manifest_path=os.path.join(out, "manifest.csv"),
        report_path=os.path.join(out, "report.md"), partitions=partitions, **config)


def test_the_merge_fanned_out_over_tasks_gives_the_one_task_merges_split(messy_root, tmp_path):
    """A merge-bucket task per bucket, then the split's last task: the same manifest, report,
    figures and split info as the merge in one task, each split listing its shards where the
    bucket tasks wrote them: the same shards, byte for byte, in the same order."""
    config = _config(max_image_pixels=300 * 300, val_fraction=0.4, shard_size=5)
    parts = splitting.checked_parts(str(messy_root), str(tmp_path / "parts"), config, 3)
    one = _split_in_one_task(str(messy_root), str(tmp_path / "one"), config, 3)
    fanned = splitting.fanned_out_merge(parts, str(messy_root), str(tmp_path / "fanned"),
                                        config)
    assert fanned == one and one["excluded_duplicate"] == 1
    for name in ("manifest.csv", "report.md"):
        assert (tmp_path / "fanned" / "split" / name).read_bytes() == \
            (tmp_path / "one" / name).read_bytes()
    for name in split.SPLITS:
        folder = str(tmp_path / "fanned" / "split" / name)
        info, expected = records.read_info(folder), records.read_info(str(tmp_path / "one" / name))
        shards = info.pop("shards")
        assert info == expected and os.listdir(folder) == [records.INFO_FILE]
        assert records.shard_files(folder) == shards
        one_shards = records.shard_files(str(tmp_path / "one" / name))
        assert [os.path.basename(s) for s in shards] == [os.path.basename(s) for s in one_shards]
        assert [open(s, "rb").read() for s in shards] == [open(s, "rb").read() for s in one_shards]
    assert len(records.read_info(str(tmp_path / "fanned" / "split" / "train"))["shards"]) > 3


def test_the_fanned_out_merge_names_what_it_cannot_take(messy_root, tmp_path):
    from admod import split_steps, split_tasks

    config = _config(max_image_pixels=300 * 300)
    with pytest.raises(AdmodError, match=r"Checked partition 'abfs://container/v2/p' is in an "
                                         r"artifact store .*\(--pipeline-root gs://"):
        split.local_part("abfs://container/v2/p", 3, str(tmp_path / "scratch"))
    with pytest.raises(AdmodError, match="bucket '16' is not one of the split's 16 buckets"):
        split_tasks.merge_bucket_step(part_uris=[], bucket="16", out_dirs={}, out_uris={},
                                      result_dir=str(tmp_path / "r"), options=config["options"],
                                      grouped=split.NearCopies())
    parts = splitting.checked_parts(str(messy_root), str(tmp_path / "parts"), config, 1)
    splitting.fanned_out_merge(parts, str(messy_root), str(tmp_path / "fanned"), config)
    results = sorted(str(p) for p in (tmp_path / "fanned").glob("bucket-*/merged"))
    other = splitting.checked_parts(str(messy_root), str(tmp_path / "other-run"), config, 1)
    splitting.fanned_out_merge(other, str(messy_root), str(tmp_path / "other"), config)
    foreign = str(tmp_path / "other" / "bucket-03" / "merged")
    for given, refused in [
            (results[:-1], r"did not get each of the 16 buckets once \(missing: 15\)"),
            # the count alone is right: bucket 01 twice, 02 lost
            (results[:2] + results[1:2] + results[3:], r"\(twice: 01; missing: 02\)"),
            (results[:3] + [foreign] + results[4:],
             f"Bucket result '{re.escape(foreign)}' was merged from other parts than this "
             "split's")]:
        with pytest.raises(AdmodError, match=refused):
            split_steps.finish_split_step(
                result_dirs=given, part_uris=parts, data_root=str(messy_root),
                out_dirs={n: str(tmp_path / "again" / n) for n in split.SPLITS},
                manifest_path=str(tmp_path / "again.csv"),
                report_path=str(tmp_path / "again.md"), grouped=split.NearCopies(), **config)
        assert not (tmp_path / "again.csv").exists()


# --- counts reconciled at every hand-over (issue 34) -------------------------------------------

def test_a_bucket_folder_lost_after_the_check_fails_the_merge_naming_it(messy_root, tmp_path):
    """A damaged cached part, a partial upload: the merge used to skip the missing folder, and
    its images were in neither the manifest nor the shards."""
    config = _config()
    parts = splitting.checked_parts(str(messy_root), str(tmp_path / "work"), config, 2)
    bucket, count = splitting.first_bucket_with_images(parts[1])
    shutil.rmtree(split.bucket_folder(parts[1], bucket))
    expected = (f"Checked partition '{parts[1]}' put {count} images in bucket {bucket:02d} but "
                "the merge found 0 there")
    with pytest.raises(AdmodError, match=expected):
        splitting.fanned_out_merge(parts, str(messy_root), str(tmp_path / "fanned"), config)
    out_dirs = {name: str(tmp_path / "one" / name) for name in split.SPLITS}
    with pytest.raises(AdmodError, match=expected):
        split.merge_parts(parts, out_dirs, str(tmp_path / "manifest.csv"), config["options"])


def test_a_bucket_whose_manifest_and_shards_disagree_is_named(messy_root, tmp_path):
    """One row more than its shards hold used to end in 'generator raised StopIteration'."""
    config = _config()
    parts = splitting.checked_parts(str(messy_root), str(tmp_path / "work"), config, 1)
    bucket, _ = splitting.first_bucket_with_images(parts[0])
    folder = split.bucket_folder(parts[0], bucket)
    with open(os.path.join(folder, split.BUCKET_MANIFEST)) as f:
        rows = f.read().splitlines()
    with open(os.path.join(folder, split.BUCKET_MANIFEST), "a") as f:
        f.write("\n".join(["~" + rows[-1]]) + "\n")  # one more image, listed last
    with pytest.raises(AdmodError, match=f"Checked bucket '{folder}'.*different numbers"):
        splitting.fanned_out_merge(parts, str(messy_root), str(tmp_path / "fanned"), config)


def test_a_part_shard_that_fails_its_checksum_is_named_as_a_user_error(messy_root, tmp_path):
    """records.CorruptShard was a ValueError: merge-bucket exited 1 with a traceback."""
    config = _config()
    parts = splitting.checked_parts(str(messy_root), str(tmp_path / "work"), config, 1)
    bucket, _ = splitting.first_bucket_with_images(parts[0])
    folder = split.bucket_folder(parts[0], bucket)
    shard = os.path.join(folder, records.shard_names(folder)[0])
    data = bytearray(open(shard, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(shard, "wb").write(bytes(data))
    with pytest.raises(AdmodError, match=f"Shard '{re.escape(shard)}' is corrupt .*--no-cache"):
        splitting.fanned_out_merge(parts, str(messy_root), str(tmp_path / "fanned"), config)


def test_every_count_is_reconciled_and_shown(messy_root, tmp_path):
    config = _config()
    parts = splitting.checked_parts(str(messy_root), str(tmp_path / "work"), config, 2)
    figures = splitting.fanned_out_merge(parts, str(messy_root), str(tmp_path / "out"), config)
    manifest = split.read_manifest(str(tmp_path / "out" / "split" / "manifest.csv"))
    n = {key.removeprefix("reconciled_"): value for key, value in figures.items()
         if key.startswith("reconciled_")}
    assert n["listed"] == n["checked"] == n["manifest_rows"] == len(manifest)
    assert n["usable"] == n["merged"] == manifest["reason"].isin(("",) + split.MERGE_REASONS).sum()
    for name in split.SPLITS:
        info = records.read_info(str(tmp_path / "out" / "split" / name))
        stored = sum(1 for shard in info["shards"]
                     for _ in split.records._read_frames(shard, False))
        assert n[name] == (manifest["split"] == name).sum() == info["count"] == stored
        assert sum(info["shard_records"]) == stored
    assert n["duplicate"] == (manifest["reason"] == images.DUPLICATE).sum() > 0
    report = (tmp_path / "out" / "split" / "report.md").read_text()
    assert (f"Reconciled: {n['listed']} listed = {n['checked']} checked = {n['usable']} usable "
            f"+ {n['excluded_by_check']} excluded by the check") in report


def test_a_count_that_does_not_reconcile_stops_the_split(messy_root, tmp_path):
    config = _config()
    parts = splitting.checked_parts(str(messy_root), str(tmp_path / "work"), config, 2)
    census_path = os.path.join(parts[0], split.PART_CENSUS)
    census = split.read_census(parts[0])
    with open(census_path, "w") as f:
        json.dump({**census, "listed": census["listed"] + 1}, f)
    with pytest.raises(AdmodError, match="counts do not reconcile: files listed"):
        splitting.fanned_out_merge(parts, str(messy_root), str(tmp_path / "out"), config)


def _same_size_pair(root):
    for label, colour in zip(CLASS_NAMES, ("red", "blue"), strict=True):
        (root / label).mkdir(parents=True)
        Image.new("RGB", (40, 40), colour).save(root / label / f"{colour}.bmp")
    a, b = (root / CLASS_NAMES[0] / "red.bmp"), (root / CLASS_NAMES[1] / "blue.bmp")
    assert a.stat().st_size == b.stat().st_size
    return a, b


def test_a_same_size_label_swap_with_kept_mtimes_changes_the_parts_key(tmp_path):
    """cp -p, rsync -a and touch -r keep the size and mtime: the ctime, which no copy tool
    sets, tells the cache that the part's files changed."""
    from admod import split_tasks

    a, b = _same_size_pair(tmp_path / "data")
    keys = split_tasks.list_images_step(data_root=str(tmp_path / "data"), partitions=1)
    assert split_tasks.list_images_step(data_root=str(tmp_path / "data"), partitions=1) == keys
    times = [(p.stat().st_atime_ns, p.stat().st_mtime_ns) for p in (a, b)]
    content = [a.read_bytes(), b.read_bytes()]
    b.write_bytes(content[0])
    a.write_bytes(content[1])
    for path, kept in zip((a, b), times, strict=True):
        os.utime(path, ns=kept)
    assert [(p.stat().st_size, p.stat().st_mtime_ns) for p in (a, b)] == [
        (len(content[0]), times[0][1]), (len(content[1]), times[1][1])]
    assert split_tasks.list_images_step(data_root=str(tmp_path / "data"), partitions=1) != keys


def test_an_interrupt_stops_the_check_processes_mid_partition(tmp_path):
    """SIGTERM during the check used to wait until every process had checked its whole
    partition (minutes on a large data set): now each process is stopped at once and unwinds
    (its finally blocks run, its temporary files go)."""
    from tests.support import workers_for_tests

    with pytest.raises(KeyboardInterrupt):
        with split._Processes(2) as processes:
            processes.pool.submit(workers_for_tests.sleep_a_minute, str(tmp_path))
            processes.pool.submit(workers_for_tests.sleep_a_minute, str(tmp_path))
            while len([n for n in os.listdir(tmp_path) if n.startswith("started")]) < 2:
                time.sleep(0.05)
            raise KeyboardInterrupt  # what SIGTERM raises in the split's process
    names = os.listdir(tmp_path)
    assert "finished" not in names
    assert sorted(n.split("-")[1] for n in names if n.startswith("unwound")) == sorted(
        n.split("-")[1] for n in names if n.startswith("started"))


# --- every (uri, label, pixels) triple kept together (issue 39) ---------------------------------

def _pixels(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        rgb = image.convert("RGB")
        return hashlib.sha256(repr(rgb.size).encode() + rgb.tobytes()).digest()


def _stored(split_dir: str) -> dict[str, tuple[int, bytes]]:
    """uri -> (label, pixels) of every record of a split folder's shards, as training reads
    them."""
    found = {}
    for path in records.shard_files(split_dir):
        for serialized in tf.data.TFRecordDataset(path):
            example = records.parse(serialized)
            found[example["uri"].numpy().decode()] = (int(example["label"]),
                                                      _pixels(example["image"].numpy()))
    return found


def test_the_split_keeps_each_uri_label_and_pixels_together_whatever_order_shards_list_in(
        messy_root, tmp_path, monkeypatch):
    """A file system or object listing may return names in any order: the merge must pair each
    manifest row with its own record (listing shards unsorted gave images wrong labels)."""
    real_glob = records.glob.glob
    monkeypatch.setattr(records.glob, "glob", lambda pattern: sorted(real_glob(pattern),
                                                                     reverse=True))
    config = _config(max_image_pixels=300 * 300, val_fraction=0.4, shard_size=1)
    parts = splitting.checked_parts(str(messy_root), str(tmp_path / "work"), config, 2)
    splitting.fanned_out_merge(parts, str(messy_root), str(tmp_path / "fanned"), config)
    one_task = {name: str(tmp_path / "one" / name) for name in split.SPLITS}
    split.run_split(str(messy_root), one_task, str(tmp_path / "one" / "manifest.csv"),
                    **config, partitions=2)
    for out in (tmp_path / "fanned" / "split", tmp_path / "one"):
        manifest = split.read_manifest(str(out / "manifest.csv"))
        kept = manifest[manifest["split"] != ""]
        stored = {}
        for name in split.SPLITS:
            stored.update(_stored(str(out / name)))
        assert sorted(stored) == sorted(kept["uri"]) and len(kept) >= 10
        for row in kept.itertuples():
            label, pixels = stored[row.uri]
            assert label == CLASS_NAMES.index(row.label), row.uri
            assert pixels == _pixels(open(row.uri, "rb").read()), row.uri
