"""The container's memory limit decides the cache; a file cache never lands in an artifact."""

import os

import pytest

from admod import datasets, resources, split, steps, training
from admod.options import ImageRules
from admod import split_steps
from admod import model as model_lib
from tests.support import small_resnet, splitting

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
    config = splitting.split_config(val_fraction=0.3, test_fraction=0.0, seed=5, min_image_side=32,
                               max_image_pixels=10**7)
    split_steps.split_step(data_root=demo_root, out_dirs=out,
                     manifest_path=str(tmp_path / "manifest.csv"),
                     report_path=str(tmp_path / "r.md"), **config)
    monkeypatch.setattr(resources, "memory_limit", lambda: 1024)  # nothing fits: a file cache
    used = []
    make_dataset = datasets.make_dataset

    def recording(folder, *args, cache_dir=None, **kwargs):
        if cache_dir:
            used.append(cache_dir)
        return make_dataset(folder, *args, cache_dir=cache_dir, **kwargs)

    monkeypatch.setattr(datasets, "make_dataset", recording)
    monkeypatch.setattr(model_lib, "_resnet50", small_resnet.small_resnet)  # any base will do
    model_dir = tmp_path / "model"
    options = training.TrainingOptions(epochs=1, batch_size=8, require_gpu=False)
    steps.train_head_step(train_dir=out["train"], val_dir=out["validation"],
                          model_dir=str(model_dir), report_path=str(tmp_path / "r.html"),
                          image_size=32, weights="none", options=options)
    (cache_dir,) = used
    assert not cache_dir.startswith(str(tmp_path))  # not under the artifact folders
    assert not os.path.exists(cache_dir)  # removed with the phase
    assert not any("cache" in name for name in os.listdir(model_dir))


@pytest.mark.parametrize("files, expected", [
    ({"cpu.max": "150000 100000\n"}, 2),  # cgroup v2: 1.5 CPUs, rounded up
    ({"cpu.max": "max 100000\n"}, None),  # v2, no quota
    ({"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 3),  # v1
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),  # v1, none
    ({"cpu.max": "10000 100000\n"}, 1),  # a tenth of a CPU: at least one
    ({}, None),
])
def test_cpu_limit_is_the_containers_quota_not_the_nodes_cpus(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    available = len(os.sched_getaffinity(0))
    assert resources.cpu_limit(str(tmp_path)) == min(expected or available, available)


def test_the_split_sizes_its_threads_by_the_container(monkeypatch):
    monkeypatch.setattr(resources, "cpu_limit", lambda: 3)
    assert ImageRules().workers == 6


def test_importing_admod_starts_no_tensorflow_runtime_and_picks_no_plot_backend():
    """Device settings (logical devices, memory growth) must still be possible after import,
    and a notebook's matplotlib backend stays its own."""
    import subprocess
    import sys

    script = ("import matplotlib; before = matplotlib.get_backend(); "
              "import admod.decoding, admod.reports, admod.datasets, admod.serving; "
              "import tensorflow as tf; cpu = tf.config.list_physical_devices('CPU')[0]; "
              "tf.config.set_logical_device_configuration(cpu, "
              "[tf.config.LogicalDeviceConfiguration()] * 2); "
              "assert matplotlib.get_backend() == before, matplotlib.get_backend(); print('ok')")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "MPLBACKEND": "svg"})
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_importing_admod_and_its_kfp_layers_changes_no_process_state():
    """No environment variable, warning filter, logging handler or patched kfp function comes
    with an import: a notebook that imports admod keeps its own."""
    import subprocess
    import sys

    # The libraries first: some add warning filters of their own when imported.
    script = ("import tensorflow, keras, sklearn.metrics, pandas, matplotlib.figure, yaml; "
              "import kfp.dsl, kfp.local, google.cloud.storage, docker; "
              "import os, warnings, logging; env = dict(os.environ); "
              "filters = list(warnings.filters); handlers = list(logging.getLogger().handlers); "
              "from kfp.local import docker_task_handler as d; run = d.run_docker_container; "
              "import admod, admod.options, admod.steps, admod.training; "
              "import admod.pipeline.cli, admod.pipeline.local_run, admod.pipeline.pipeline; "
              "assert dict(os.environ) == env, set(os.environ.items()) ^ set(env.items()); "
              "assert list(warnings.filters) == filters; "
              "assert logging.getLogger().handlers == handlers; "
              "assert d.run_docker_container is run; print('ok')")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
