"""The whole pipeline under kfp.local on tiny data (32 px, 60 images, one epoch per phase); the
run that is not blessed trains on a small stand-in for ResNet50 (tests/support/small_resnet.py),
its DAG, steps and outputs otherwise pipeline.yaml's."""

import io
import json
import os
import re

import pandas as pd
import pytest

from admod import components, registry
from admod.defaults import CLASS_NAMES
from admod.pipeline import compiled, local_run, run_index, run_summary, step_log
from tests.support import small_resnet

pytestmark = pytest.mark.first(seconds=110)  # the order: tests/conftest.py

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = {"image_size": 32, "batch_size": 8, "head_epochs": 1, "fine_tune_epochs": 1,
        "weights": "none", **local_run.LOCAL_RUN}


PIPELINE_FILE = os.path.join(REPO, "pipeline.yaml")


def _run(demo_root, root, echo=None, pipeline_file=PIPELINE_FILE, **params):
    arguments = {**TINY, "data_root": demo_root, "registry_root": str(root / "registry"), **params}
    return local_run.run_local(pipeline_file, arguments, str(root / "runs"), echo=echo)


def _on_small_resnet(folder) -> str:
    """pipeline.yaml compiled as `make compile` does, train-head and fine-tune on the small
    ResNet."""
    build = components.build
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(components, "build", lambda image: small_resnet.components_on_it(
            build(image), image, str(folder)))
        compiled.write_pipeline(str(folder / "pipeline.yaml"))
    return str(folder / "pipeline.yaml")


@pytest.fixture(scope="module")
def blessed_run(demo_root, tmp_path_factory):
    root = tmp_path_factory.mktemp("pass")
    echoed = io.StringIO()
    # A one-epoch 32 px model's scores may rank backwards, which no calibration maps (the
    # blessing is then refused, tests/admod/test_evaluate_push_steps.py): not calibrated here.
    run_dir = _run(demo_root, root, echo=echoed, min_accuracy=1e-6, min_auc=0.0,
                   calibration="none")
    return root, run_dir, echoed.getvalue()


def test_a_quiet_run_says_one_line_per_step_and_epoch_and_keeps_every_log(blessed_run):
    _, run_dir, echoed = blessed_run
    lines = echoed.splitlines()
    steps = ["check-parameters", "list-images", "check-images", "gather-parts", "merge-bucket",
             "split", "train-head", "fine-tune", "evaluate", "push"]
    # start and end of each step, a fan-out's tasks in one line when they end; an epoch a phase
    assert len(lines) == 2 * len(steps) - 2 + 2, echoed
    assert len([line for line in lines if re.search(
        r"merge-bucket ×16 success in \d+ s, \d+ images kept$", line)]) == 1, echoed
    assert any(re.search(r"train-head epoch 1/1: loss [0-9.]+, val_loss [0-9.]+, val_auc", line)
               for line in lines)
    for expected in (r"split success in \d+ s, train \d+, validation \d+",
                     r"train-head success in \d+ s, best val_loss [0-9.]+ at epoch 1$",
                     r"fine-tune success in \d+ s, best val_loss [0-9.]+ at epoch 2$",
                     r"evaluate success in \d+ s, roc_auc [0-9.]+, blessed"):
        assert any(re.search(expected, line) for line in lines), expected
    for step in steps:
        log = open(os.path.join(run_dir, step, "log")).read()  # a loop's tasks: in one log
        assert f"Executing task '{step}'" in log and f"Task '{step}' finished" in log
    assert "val_loss: " in open(os.path.join(run_dir, "train-head", "log")).read()


def test_every_step_writes_well_formed_artifacts(blessed_run):
    _, run_dir, _ = blessed_run
    step = lambda *p: os.path.join(run_dir, *p)  # noqa: E731
    for name in ("train", "validation"):
        info = json.load(open(step("split", name, "info.json")))
        assert info["count"] == sum(info["class_counts"].values()) > 0
        # the shards stay where the merge-bucket tasks wrote them, in bucket order
        assert os.listdir(step("split", name)) == ["info.json"]
        buckets = [re.search(r"for-loop-\d+-iteration-\d+/merge-bucket/" + name
                             + r"/part-(\d\d)-\d{5}.tfrecord$", s).group(1)
                   for s in info["shards"]]
        assert buckets == sorted(buckets) and len(set(buckets)) > 1
    manifest = pd.read_csv(step("split", "manifest"))
    assert len(manifest) == 60 and set(manifest["split"].dropna()) == {"train", "validation"}
    assert "| Train" in open(step("split", "report")).read()
    for phase in ("train-head", "fine-tune"):
        assert os.path.getsize(step(phase, "model", "model.keras")) > 1_000_000
        assert json.load(open(step(phase, "model", "model_info.json")))["image_size"] == 32
        assert open(step(phase, "report")).read().startswith("<!DOCTYPE html>")
    head = json.load(open(step("train-head", "model", "model_info.json")))
    fine = json.load(open(step("fine-tune", "model", "model_info.json")))
    assert (head["last_epoch"], fine["last_epoch"]) == (1, 2)  # epoch numbering continues
    evaluation = json.load(open(step("evaluate", "metrics")))
    predictions = pd.read_csv(step("evaluate", "predictions"))
    assert len(predictions) == evaluation["scores"]["count"]
    assert predictions["probability"].between(0, 1).all()
    # the decision as served: at the threshold, by label and by name (calibration none here)
    assert (predictions["predicted_label"]
            == (predictions["probability"] >= evaluation["threshold"])).all()
    assert (predictions["predicted_class"] == predictions["predicted_label"].map(
        dict(enumerate(CLASS_NAMES)))).all()
    assert (predictions["actual_class"] == predictions["label"].map(
        dict(enumerate(CLASS_NAMES)))).all()
    assert "Most confidently wrong" in open(step("evaluate", "report")).read()
    matrix = evaluation["scores"]["confusion_matrix"]
    validation = json.load(open(step("split", "validation", "info.json")))
    assert sum(map(sum, matrix)) == validation["count"]
    assert evaluation["calibration"]["method"] == "none"
    assert evaluation["calibration"]["ece_raw"] == evaluation["scores"]["ece"]
    assert evaluation["blessed"]


def test_blessed_model_becomes_a_new_registry_version(blessed_run):
    root, run_dir, _ = blessed_run
    versions = registry.complete_versions(str(root / "registry"))
    assert len(versions) == 1
    assert registry.champion(str(root / "registry")) == versions[0]
    folder = root / "registry" / versions[0]
    assert {"model.keras", "metrics.json", "model_info.json", "model_card.md",
            registry.SAVED_MODEL_DIR, registry.MARKER} <= set(os.listdir(folder))
    card = (folder / "model_card.md").read_text()
    assert "data_fingerprint" in card and "pipeline_run_id: " in card
    run_id = re.search(r"pipeline_run_id: `+ (\S+) `+", card).group(1)
    assert run_id and "{{" not in run_id  # the run's unique id, resolved (kfp.local: digits)
    summary = run_summary.summary(run_dir)
    assert f"Pushed model: {folder}" in summary and "Decision: BLESSED" in summary
    # the published version is a Model artifact: the UI's lineage links the run to it
    published = run_summary.read_run(run_dir)["push"]["artifacts"]["published"]["artifacts"][0]
    assert published["metadata"]["registry_uri"] == str(folder)
    assert published["uri"].startswith(str(run_dir))  # under the pipeline root, as launchers want
    metadata = published["metadata"]
    assert metadata["version"] == versions[0] and metadata["champion"] is True
    assert metadata["pipeline_run_id"] == run_id and 0 <= metadata["roc_auc"] <= 1
    head = run_summary.read_run(run_dir)["train-head"]["artifacts"]["model"]["artifacts"][0]
    assert head["metadata"]["tensorboard_logdir"].endswith("/train-head/model/tensorboard")


def test_the_run_opens_from_one_page_whose_links_all_resolve(blessed_run):
    _, run_dir, _ = blessed_run
    page = open(run_index.write(run_dir)).read()
    links = re.findall(r'href="([^"]+)"', page)
    assert {"reports/split.md", "reports/train-head.html", "reports/fine-tune.html",
            "reports/evaluate.html", "evaluate/log"} <= set(links)
    for link in links:
        assert os.path.isfile(os.path.join(run_dir, link)), link
    for name in ("train-head", "fine-tune", "evaluate"):  # a browser renders them as pages
        with open(os.path.join(run_dir, "reports", name + ".html")) as f:
            assert f.read().startswith("<!DOCTYPE html>"), name
    assert "Blessed" in page and re.search(r"merge-bucket</td><td>16 tasks: \d+ images kept",
                                           page)
    assert f"tensorboard --logdir {run_dir}" in page


def test_unmet_threshold_skips_push_and_leaves_the_registry_unchanged(blessed_run, demo_root,
                                                                     tmp_path):
    root, _, _ = blessed_run
    before = sorted(folder for folder, _, _ in os.walk(root / "registry"))
    # Nothing learnt (learning rates 1e-12) and a threshold no output reaches: recall 0 < 0.5.
    # (min_accuracy=1.0 alone was met once: the tiny demo set is easy.)
    # One check-images task: the fan-out of one.
    run_dir = _run(demo_root, root, pipeline_file=_on_small_resnet(tmp_path),
                   head_learning_rate=1e-12, fine_tune_learning_rate=1e-12,
                   threshold_rule="fixed", threshold_target=0.999999, min_recall=0.5,
                   split_workers=1)
    assert not os.path.exists(os.path.join(run_dir, "push"))
    assert sorted(folder for folder, _, _ in os.walk(root / "registry")) == before
    summary = run_summary.summary(run_dir)
    assert "Decision: NOT BLESSED" in summary and "registry is unchanged" in summary
    assert "| Validation" in summary  # the split report
    # The default calibration ran in the evaluate component: fitted, or refused with its reason.
    with open(os.path.join(run_dir, "evaluate", "metrics")) as f:
        calibration = json.load(f)["calibration"]
    assert calibration["method"] == "platt" or calibration["refused"].startswith("Calibration")
    assert re.search(r"Calibration (platt|none): ECE [0-9.]+ \(raw score [0-9.]+\)", summary)
    assert ("Calibration refused: Calibration" in summary) == bool(calibration["refused"])


def test_a_fan_out_says_its_tasks_figures_summed(tmp_path):
    """Two check-images tasks of one ParallelFor: one figure, the sum of theirs."""
    for i, (checked, mtime) in enumerate(((233, 1_000), (267, 2_000))):
        folder = tmp_path / "run" / "for-loop" / f"iteration-{i}" / "check-images"
        folder.mkdir(parents=True)
        output = folder / "executor_output.json"
        output.write_text(json.dumps({"artifacts": {"part": {"artifacts": [
            {"metadata": {"checked": checked}}]}}}))
        os.utime(output, (mtime, mtime))
    outputs = step_log.finished_outputs(str(tmp_path), "check-images")
    assert step_log.figure_of("check-images", outputs) == "500 files checked"
