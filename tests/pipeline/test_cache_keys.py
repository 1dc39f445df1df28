"""Caching that means something: on unchanged data every cacheable step's key is the same in
the next run, and a new file changes the key of its own partition only.

kfp.local does not cache, so the keys are computed here by the backend's own rule: Kubeflow
Pipelines (backend/src/v2/cacheutils/cache.go, GenerateCacheKey, at 2.17.0) keys a task on its
input parameter values, its input artifacts' names (an artifact a cache hit reused keeps its
name, so a hit propagates downstream), its output specs with the URIs wiped, its image and
command. Vertex AI Pipelines keys on the same inputs (its documented rule: the component's
spec and its inputs). So: check-images must take parameters only, all of them the same on
unchanged data; gather-parts takes check-images' uris, which a cache hit keeps; merge-bucket
gather-parts' list; split merge-bucket's results; the training steps split's outputs.
"""

import shutil
import types

import pytest
from PIL import Image

from admod import split
from admod.defaults import CLASS_NAMES
from tests.pipeline.test_compile import COMMITTED, _spec
from admod.options import ImageRules
from admod import split_tasks
from tests.support import splitting

PARTITIONS = 3


def _keys(data_root):
    return split_tasks.list_images_step(data_root=data_root, partitions=PARTITIONS)


def test_the_check_images_task_takes_only_its_partitions_key_and_parameters():
    spec = _spec(COMMITTED)
    loops = [c for name, c in spec.components.items() if name.startswith("comp-for-loop")]
    (check,) = [t for loop in loops for n, t in loop.dag.tasks.items() if n == "check-images"]
    assert not check.inputs.artifacts
    assert set(check.inputs.parameters) == {"data_root", "partition", "split_workers",
                                            "min_image_side", "max_image_pixels"}
    (merge,) = [t for loop in loops for n, t in loop.dag.tasks.items() if n == "merge-bucket"]
    for step in ("gather-parts", "merge-bucket", "split", "train-head", "fine-tune"):
        task = merge if step == "merge-bucket" else spec.root.dag.tasks[step]
        assert "run_id" not in task.inputs.parameters, step
        assert not any("{{$" in str(p.runtime_value.constant)
                       for p in task.inputs.parameters.values()), step


def test_unchanged_data_gives_the_same_keys_and_a_new_file_changes_one(demo_root, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(demo_root, root)
    first, again = _keys(str(root)), _keys(str(root))
    assert first == again  # every check-images task, then split and training: cache hits
    assert len(set(first)) == PARTITIONS
    new = root / "not_allowed_ads" / "new_ad.png"
    Image.new("RGB", (64, 64), "blue").save(new)
    after = _keys(str(root))
    changed = [i for i in range(PARTITIONS) if after[i] != first[i]]
    assert changed == [split.partition_of(str(new), PARTITIONS)]


def test_a_partition_checked_in_an_earlier_run_merges_as_if_checked_now(demo_root, tmp_path):
    """What a cache hit gives the merge: parts checked before a file was added, beside the one
    checked after, merge to exactly what a fresh split of all files gives."""
    root = tmp_path / "data"
    shutil.copytree(demo_root, root)
    config = splitting.split_config(val_fraction=0.3, test_fraction=0.0, seed=5, shard_size=7)
    before = _keys(str(root))
    cached = {}
    for key in before:
        part = tmp_path / "before" / key.split(":")[0]
        split_tasks.check_images_step(data_root=str(root), partition_key=key, partitions=PARTITIONS,
                                part_dir=str(part), rules=config["rules"])
        cached[key] = str(part)
    Image.new("RGB", (64, 64), "blue").save(root / "allowed_ads" / "zz_new.png")
    parts = []
    for key in _keys(str(root)):
        if key not in cached:  # the changed partition is checked again, the others are hits
            cached[key] = str(tmp_path / "after" / key.split(":")[0])
            split_tasks.check_images_step(data_root=str(root), partition_key=key,
                                    partitions=PARTITIONS, part_dir=cached[key],
                                    rules=config["rules"])
        parts.append(cached[key])
    merged = {n: str(tmp_path / "merged" / n) for n in split.SPLITS}
    split.merge_parts(parts, merged, str(tmp_path / "merged.csv"), config["options"])
    fresh = {n: str(tmp_path / "fresh" / n) for n in split.SPLITS}
    split.run_split(str(root), fresh, str(tmp_path / "fresh.csv"), **config,
                    partitions=PARTITIONS)
    assert open(tmp_path / "merged.csv").read() == open(tmp_path / "fresh.csv").read()
    for name in split.SPLITS:
        for shard in sorted((tmp_path / "fresh" / name).iterdir()):
            assert (tmp_path / "merged" / name / shard.name).read_bytes() == shard.read_bytes()


def test_files_changed_while_the_split_runs_are_refused(demo_root, tmp_path):
    import pytest

    from admod.errors import AdmodError

    root = tmp_path / "data"
    shutil.copytree(demo_root, root)
    key = _keys(str(root))[0]
    victim = next(p for p in sorted((root / "allowed_ads").iterdir())
                  if split.partition_of(str(p), PARTITIONS) == 0)
    victim.write_bytes(victim.read_bytes() + b"\0")  # its size changes
    with pytest.raises(AdmodError, match="changed while the split ran"):
        split_tasks.check_images_step(data_root=str(root), partition_key=key, partitions=PARTITIONS,
                                part_dir=str(tmp_path / "part"), rules=ImageRules())
    with pytest.raises(AdmodError, match="is not a key list-images wrote"):
        split_tasks.check_images_step(data_root=str(root), partition_key="7:abc",
                                partitions=PARTITIONS, part_dir=str(tmp_path / "p"),
                                rules=ImageRules())


# --- each component of a file's fingerprint changes the key, and only it (issue 39) -----------

@pytest.mark.parametrize("changed", ["size", "mtime", "ctime", None])
def test_each_part_of_a_local_files_fingerprint_changes_its_partitions_key(tmp_path, monkeypatch,
                                                                         changed):
    """Size, mtime and ctime each change the key alone (a mount that keeps ctime, such as Cloud
    Storage FUSE, leaves mtime and size to tell), and nothing else does: a stale cache hit
    would train on old data, a needless miss reruns the split."""
    import os

    for label in CLASS_NAMES:
        (tmp_path / "data" / label).mkdir(parents=True)
        Image.new("RGB", (40, 40), "red").save(tmp_path / "data" / label / "ad.png")
    target = str(tmp_path / "data" / CLASS_NAMES[0] / "ad.png")
    real_stat = os.stat
    faked = {"size": 100, "mtime": 1_000, "ctime": 2_000}

    def stat(path, *args, **kwargs):
        found = real_stat(path, *args, **kwargs)
        if os.fsdecode(path) != target:
            return found
        return types.SimpleNamespace(st_mode=found.st_mode, st_size=faked["size"],
                                     st_mtime_ns=faked["mtime"], st_ctime_ns=faked["ctime"])

    monkeypatch.setattr(os, "stat", stat)
    before = split_tasks.list_images_step(data_root=str(tmp_path / "data"), partitions=1)
    if changed:
        faked[changed] += 1
    after = split_tasks.list_images_step(data_root=str(tmp_path / "data"), partitions=1)
    assert (after != before) == (changed is not None)
