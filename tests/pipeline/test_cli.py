"""User mistakes end in one sentence on stderr, exit status 1, no traceback."""

import glob
import os
import subprocess
import sys

from admod.defaults import CLASS_NAMES


def _admod(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "admod.pipeline.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def _one_sentence(result, *words):
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    message = [line for line in result.stderr.splitlines() if line.startswith("admod: ")]
    assert len(message) == 1, result.stderr
    for word in words:
        assert word in message[0]


def test_split_with_a_missing_class_folder(tmp_path):
    (tmp_path / "data" / CLASS_NAMES[0]).mkdir(parents=True)
    result = _admod("split", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out"))
    _one_sentence(result, CLASS_NAMES[1], "is missing")


def test_split_with_a_missing_data_root(tmp_path):
    result = _admod("split", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"))
    _one_sentence(result, "nowhere", "is not a folder")


def test_split_alone_writes_shards_manifest_and_report(demo_root, tmp_path):
    result = _admod("split", "--data", demo_root, "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    written = set(os.listdir(tmp_path / "out"))
    assert {"train", "validation", "test", "manifest.csv", "report.md"} <= written
    assert "| Validation" in (tmp_path / "out" / "report.md").read_text()


def test_run_with_a_malformed_parameter(demo_root, tmp_path):
    result = _admod("run", "--data", demo_root, "-p", "head_epochs", cwd=tmp_path)
    _one_sentence(result, "head_epochs", "NAME=VALUE")


def test_run_without_a_pipeline_file(demo_root, tmp_path):
    result = _admod("run", "--data", demo_root, "--pipeline-file", str(tmp_path / "none.yaml"))
    _one_sentence(result, "none.yaml", "admod compile")


def test_run_with_a_missing_data_folder(tmp_path):
    result = _admod("run", "--data", str(tmp_path / "nowhere"))
    _one_sentence(result, "nowhere", "does not exist")


def test_a_failing_step_ends_the_run_in_one_sentence(tmp_path):
    (tmp_path / "data" / CLASS_NAMES[0]).mkdir(parents=True)
    (tmp_path / "data" / CLASS_NAMES[1]).mkdir(parents=True)
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = _admod("run", "--data", str(tmp_path / "data"), "--pipeline-file",
                    os.path.join(repo, "pipeline.yaml"), "--pipeline-root", str(tmp_path / "runs"),
                    "--registry", str(tmp_path / "models"))
    _one_sentence(result, "list-images", "failed")
    assert "holds no image files" in result.stdout + result.stderr  # the step explains itself


def test_submit_without_a_target():
    _one_sentence(_admod("submit", "--platform", "vertex"), "--project is missing")
    _one_sentence(_admod("schedule", "list", "--platform", "kubeflow"), "--host is missing")


def test_run_checks_every_parameter_before_anything_runs(demo_root, tmp_path):
    result = _admod("run", "--data", demo_root, "-p", "head_epoch=5", "--pipeline-root",
                    str(tmp_path / "runs"), cwd=tmp_path)
    _one_sentence(result, "head_epoch", "did you mean head_epochs?")
    assert not (tmp_path / "runs").exists()  # nothing ran


def test_a_pipeline_started_elsewhere_stops_at_its_first_step(demo_root, tmp_path):
    """The UI or the API skip the command line's checks: check-parameters stops the run before
    the split, in one sentence."""
    from admod.errors import AdmodError
    from admod.pipeline import local_run

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    arguments = {"data_root": demo_root, "registry_root": str(tmp_path / "models"),
                 "image_size": 0, "unfreeze": "conv9_block1", **local_run.LOCAL_RUN}
    try:
        local_run.run_local(os.path.join(repo, "pipeline.yaml"), arguments, str(tmp_path / "runs"))
    except AdmodError as error:
        assert "check-parameters" in str(error)
    else:
        raise AssertionError("the run did not stop")
    assert not glob.glob(str(tmp_path / "runs" / "*" / "split"))  # the split never started


def test_split_never_writes_into_a_folder_that_holds_something(demo_root, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old-manifest.csv").write_text("uri\n")
    _one_sentence(_admod("split", "--data", demo_root, "--out", str(out)), "is not an empty folder")
    assert os.listdir(out) == ["old-manifest.csv"]


def test_registry_list_and_repair_from_the_command_line(tmp_path):
    from admod import registry

    root = tmp_path / "registry"
    model = tmp_path / "m"
    model.mkdir()
    (model / "model.keras").write_bytes(b"weights")
    uri, _ = registry.push(str(model), str(root), None)
    version = os.path.basename(uri)
    (root / registry.CHAMPION).write_text("")
    _one_sentence(_admod("predict", "--model", str(root), str(model)), "empty or corrupt",
                  "set-champion")
    repaired = _admod("registry", "set-champion", str(root), version)
    assert repaired.returncode == 0, repaired.stderr
    listed = _admod("registry", "list", str(root))
    assert listed.stdout.split() == [version, "champion"]
