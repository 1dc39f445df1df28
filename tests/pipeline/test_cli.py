"""User mistakes end in one sentence on stderr, exit status 3 (USER_ERROR_STATUS), no traceback;
a failed step of a run exits 1. The commands run in this process (`cli.main`, what the console
script calls); two tests run `python -m admod.pipeline.cli` as a process of its own."""

import glob
import logging
import os
import subprocess
import sys
import types

import pytest

from admod import options
from admod.defaults import CLASS_NAMES
from admod.errors import USER_ERROR_STATUS
from admod.pipeline import cli


def _process(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "admod.pipeline.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def admod(capsys, monkeypatch):
    """`admod ARGS` in this process: its exit status, stdout and stderr."""
    handlers = logging.getLogger().handlers[:]

    def run(*args, cwd=None):
        if cwd:
            monkeypatch.chdir(cwd)
        capsys.readouterr()
        try:
            status = cli.main(list(args))
        except SystemExit as exit_:  # argparse's own exits (--version, --help)
            status = exit_.code
        said = capsys.readouterr()
        return types.SimpleNamespace(returncode=status, stdout=said.out, stderr=said.err)

    yield run
    logging.getLogger().handlers[:] = handlers  # main's logging went to the captured stderr


def _one_sentence(result, *words, status=USER_ERROR_STATUS):
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    message = [line for line in result.stderr.splitlines() if line.startswith("admod: ")]
    assert len(message) == 1, result.stderr
    for word in words:
        assert word in message[0]


def test_split_with_a_missing_class_folder(admod, tmp_path):
    (tmp_path / "data" / CLASS_NAMES[0]).mkdir(parents=True)
    result = admod("split", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out"))
    _one_sentence(result, CLASS_NAMES[1], "is missing")


def test_split_with_a_missing_data_root(admod, tmp_path):
    result = admod("split", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"))
    _one_sentence(result, "nowhere", "is not a folder")


def test_split_alone_writes_shards_manifest_and_report(admod, demo_root, tmp_path):
    result = admod("split", "--data", demo_root, "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    written = set(os.listdir(tmp_path / "out"))
    assert {"train", "validation", "test", "manifest.csv", "report.md"} <= written
    assert "| Validation" in (tmp_path / "out" / "report.md").read_text()


def test_run_with_a_malformed_parameter(admod, demo_root, tmp_path):
    result = admod("run", "--data", demo_root, "-p", "head_epochs", cwd=tmp_path)
    _one_sentence(result, "head_epochs", "NAME=VALUE")


def test_run_without_a_pipeline_file(admod, demo_root, tmp_path):
    result = admod("run", "--data", demo_root, "--pipeline-file", str(tmp_path / "none.yaml"))
    _one_sentence(result, "none.yaml", "admod compile")


def test_run_with_a_missing_data_folder(admod, tmp_path):
    result = admod("run", "--data", str(tmp_path / "nowhere"))
    _one_sentence(result, "nowhere", "does not exist")


def test_a_failing_step_ends_the_run_in_one_sentence(admod, tmp_path):
    (tmp_path / "data" / CLASS_NAMES[0]).mkdir(parents=True)
    (tmp_path / "data" / CLASS_NAMES[1]).mkdir(parents=True)
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = admod("run", "--data", str(tmp_path / "data"), "--pipeline-file",
                   os.path.join(repo, "pipeline.yaml"), "--pipeline-root", str(tmp_path / "runs"),
                   "--registry", str(tmp_path / "models"))
    _one_sentence(result, "list-images", "failed", status=1)
    assert "holds no image files" in result.stdout + result.stderr  # the step explains itself


def test_submit_without_a_target(admod):
    _one_sentence(admod("submit", "--platform", "vertex"), "--project is missing")
    _one_sentence(admod("schedule", "list", "--platform", "kubeflow"), "--host is missing")


def test_run_checks_every_parameter_before_anything_runs(demo_root, tmp_path):
    (tmp_path / "tmp").mkdir()
    result = _process("run", "--data", demo_root, "-p", "head_epoch=5", "--pipeline-root",
                      str(tmp_path / "runs"), cwd=tmp_path, env={"TMPDIR": str(tmp_path / "tmp")})
    _one_sentence(result, "head_epoch", "did you mean head_epochs?")
    assert not (tmp_path / "runs").exists()  # nothing ran
    assert os.listdir(tmp_path / "tmp") == []  # the pipeline compiled for the run is gone


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
    # the split never started
    assert not glob.glob(str(tmp_path / "runs" / "**" / "split"), recursive=True)


def test_split_never_writes_into_a_folder_that_holds_something(admod, demo_root, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old-manifest.csv").write_text("uri\n")
    _one_sentence(admod("split", "--data", demo_root, "--out", str(out)), "is not an empty folder")
    assert os.listdir(out) == ["old-manifest.csv"]


def test_registry_list_and_repair_from_the_command_line(admod, tmp_path):
    from admod import registry

    root = tmp_path / "registry"
    model = tmp_path / "m"
    model.mkdir()
    (model / "model.keras").write_bytes(b"weights")
    uri, _ = registry.push(str(model), str(root), None)
    version = os.path.basename(uri)
    (root / registry.CHAMPION).write_text("")
    _one_sentence(admod("predict", "--model", str(root), str(model)), "empty or corrupt",
                  "set-champion")
    repaired = admod("registry", "set-champion", str(root), version)
    assert repaired.returncode == 0, repaired.stderr
    listed = admod("registry", "list", str(root))
    assert listed.stdout.split() == [version, "champion"]


def test_version_from_the_package_metadata():
    from importlib import metadata

    result = _process("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"admod {metadata.version('admod')}"


def test_compile_refuses_an_output_it_cannot_write(admod, tmp_path):
    _one_sentence(admod("compile", "-o", str(tmp_path / "missing_dir" / "p.yaml")),
                  "missing_dir", "does not exist")
    _one_sentence(admod("compile", "-o", str(tmp_path / "p.txt")), "p.txt", ".yaml or .json")
    assert os.listdir(tmp_path) == []


def test_demo_data_never_overwrites_silently_and_needs_two_ads(admod, tmp_path):
    folder = tmp_path / "mine"
    (folder / CLASS_NAMES[0]).mkdir(parents=True)
    mine = folder / CLASS_NAMES[0] / "ad_00001.png"
    mine.write_bytes(b"my own image")
    _one_sentence(admod("demo-data", str(folder), "--count", "10"), "already holds files",
                  "--force")
    assert mine.read_bytes() == b"my own image"
    for count in ("-5", "1", "0"):
        _one_sentence(admod("demo-data", str(tmp_path / "new"), "--count", count),
                      f"--count {count}", "2 or more")
    assert not (tmp_path / "new").exists()
    forced = admod("demo-data", str(folder), "--count", "4", "--force")
    assert forced.returncode == 0 and "wrote 4 ads" in forced.stdout


def test_every_parameter_problem_is_said_at_once_before_demo_data_is_written(admod, tmp_path):
    result = admod("run", "-p", "image_size=abc", "-p", "val_fraction=2", "-p", "head_epochs=-1",
                   cwd=tmp_path)
    assert result.returncode == USER_ERROR_STATUS and "Traceback" not in result.stderr
    for problem in ("image_size='abc' is not a whole number", "head_epochs=-1",
                    "val_fraction=2.0 is out of range"):
        assert problem in result.stderr, result.stderr
    assert not (tmp_path / "data").exists()  # no demo data written


FLOAT_PARAMETERS = sorted(name for name, field in options.PARAMETERS.items()
                          if isinstance(field.default, float))


def test_a_gate_cannot_be_switched_off_with_nan(admod, tmp_path):
    """min_auc=nan compared false with every bound: it passed the check, then the run died in a
    protobuf traceback, and on a cluster the AUC gate was dropped."""
    result = admod("run", "-p", "min_auc=nan", "--pipeline-root", str(tmp_path / "runs"),
                    cwd=tmp_path)
    _one_sentence(result, "min_auc=nan is not a finite number")
    assert os.listdir(tmp_path) == []  # not even the demo data was written


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_no_float_parameter_takes_a_value_that_is_not_finite(value, tmp_path, monkeypatch,
                                                             capsys):
    assert len(FLOAT_PARAMETERS) >= 15  # every float of every step's options
    monkeypatch.chdir(tmp_path)
    given = [arg for name in FLOAT_PARAMETERS for arg in ("-p", f"{name}={value}")]
    assert cli.main(["run", "--pipeline-root", str(tmp_path / "runs"), *given]) \
        == USER_ERROR_STATUS
    said = capsys.readouterr().err.splitlines()
    assert "Traceback" not in "\n".join(said) and os.listdir(tmp_path) == []
    for name in FLOAT_PARAMETERS:  # one sentence each, all at once
        assert sum(f"{name}={float(value)} is not a finite number" in line
                   for line in said) == 1, (name, said)
