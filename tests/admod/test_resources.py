"""The container's memory limit decides the cache; a file cache never lands in an artifact."""

import os

import pytest

from admod import datasets, resources, split, steps, training

GIB = 2**30


@pytest.mark.parametrize("files, expected", [
    ({"memory.max": "2147483648\n"}, 2 * GIB),  # cgroup v2 with a limit
    ({"memory.max": "max\n"}, None),  # cgroup v2, no limit
    ({"memory/memory.limit_in_bytes": "1073741824\n"}, 1 * GIB),  # cgroup v1 with a limit
    ({"memory/memory.limit_in_bytes": "9223372036854771712\n"}, None),  # v1, no limit
    ({}, None),  # no cgroup files at all
])
def test_memory_limit_is_the_containers(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    limit = resources.memory_limit(str(tmp_path))
    assert limit == min(expected or resources.physical_memory(), resources.physical_memory())


def test_images_that_do_not_fit_the_limit_are_cached_on_disk(monkeypatch, tmp_path):
    monkeypatch.setattr(resources, "memory_limit", lambda: 4 * GIB)
    assert datasets.cache_file(1000, 224, str(tmp_path)) == ""  # 150 MB: in memory
    monkeypatch.setattr(resources, "memory_limit", lambda: 256 * 2**20)
    assert datasets.cache_file(1000, 224, str(tmp_path)) == str(tmp_path / "images")


def test_training_caches_on_local_disk_never_in_the_model_artifact(demo_root, tmp_path,
                                                                    monkeypatch):
    out = {name: str(tmp_path / name) for name in split.SPLITS}
    config = split.SplitConfig(val_fraction=0.3, test_fraction=0.0, seed=5, min_image_side=32,
                               max_image_pixels=10**7)
    steps.split_step(data_root=demo_root, out_dirs=out,
                     manifest_path=str(tmp_path / "manifest.csv"),
                     report_path=str(tmp_path / "r.md"), config=config)
    monkeypatch.setattr(resources, "memory_limit", lambda: 1024)  # nothing fits: a file cache
    used = []
    make_dataset = datasets.make_dataset

    def recording(folder, *args, cache_dir=None, **kwargs):
        if cache_dir:
            used.append(cache_dir)
        return make_dataset(folder, *args, cache_dir=cache_dir, **kwargs)

    monkeypatch.setattr(datasets, "make_dataset", recording)
    model_dir = tmp_path / "model"
    options = training.TrainingOptions(epochs=1, batch_size=8)
    steps.train_head_step(train_dir=out["train"], val_dir=out["validation"],
                          model_dir=str(model_dir), report_path=str(tmp_path / "r.html"),
                          image_size=32, weights="none", options=options)
    (cache_dir,) = used
    assert not cache_dir.startswith(str(tmp_path))  # not under the artifact folders
    assert not os.path.exists(cache_dir)  # removed with the phase
    assert not any("cache" in name for name in os.listdir(model_dir))
