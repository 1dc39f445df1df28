"""log-experiment through google-cloud-aiplatform's experiment tracking against a fake Vertex
REST API: the run's parameters, final metrics and per-epoch curves, a retried step resuming
the same run, and a refused call ending in one sentence."""

import json
import os

import pandas as pd
import pytest
from google.auth.credentials import AnonymousCredentials

from admod import options, registry, steps, vertex_experiments, vertex_targets
from admod.metric_names import SCORES
from admod.errors import AdmodError
from tests.support.fake_vertex import LOCATION, PARENT, PROJECT, fake_vertex
from tests.support import results

TENSORBOARD = f"{PARENT}/tensorboards/77"
STORE = f"{PARENT}/metadataStores/default"
RUN_ID = "admod-resnet50-ad-moderation-20261202113000"


@pytest.fixture
def vertex():
    from google.cloud.aiplatform import initializer
    from google.cloud.aiplatform.metadata import metadata

    saved = dict(vars(initializer.global_config))
    with fake_vertex() as (server, url):
        server.store[TENSORBOARD] = {"name": TENSORBOARD, "displayName": "admod"}
        yield server, {"credentials": AnonymousCredentials(), "api_endpoint": url,
                       "api_transport": "rest"}
    vars(initializer.global_config).update(saved)  # aiplatform.init's settings are global
    metadata._experiment_tracker.reset()


def _phase_folder(folder, phase, epochs):
    os.makedirs(folder)
    history = pd.DataFrame({"epoch": range(epochs[0], epochs[1]),
                            "loss": 0.5, "val_loss": 0.4, "val_auc": 0.9, "learning_rate": 1e-3})
    history.to_csv(os.path.join(folder, "history.csv"), index=False)
    info = results.phase_summary(phase=phase, epochs_run=epochs[1] - epochs[0],
                                 best_epoch=epochs[1], best_val_loss=0.4, best_val_accuracy=0.8,
                                 best_val_auc=0.9)
    with open(os.path.join(folder, registry.MODEL_INFO_FILE), "w") as f:
        json.dump(info.to_json(), f)
    return str(folder)


@pytest.fixture
def run_files(tmp_path):
    values = {"data_root": "gs://ads/data", "head_epochs": 15, "horizontal_flip": True,
              "experiment": "admod-ads"}
    scores = {name: 0.9 for name in SCORES}
    evaluation = results.evaluation(scores, threshold=0.61, blessed=True, calibration={
        "method": "platt", "ece_raw": 0.3}).to_json()
    paths = {"parameters_path": str(tmp_path / "parameters.json"),
             "evaluation_path": str(tmp_path / "metrics.json")}
    for key, data in (("parameters_path", values), ("evaluation_path", evaluation)):
        with open(paths[key], "w") as f:
            json.dump(data, f)
    paths["head_dir"] = _phase_folder(tmp_path / "head", "head", (0, 3))
    paths["fine_tune_dir"] = _phase_folder(tmp_path / "fine", "fine_tune", (3, 5))
    return paths


def _run_context(server):
    return server.store[f"{STORE}/contexts/admod-ads-{RUN_ID}"]


def _writes(server):
    return [body for method, path, _, body in server.requests
            if method == "POST" and path.endswith(f"runs/{RUN_ID}:write")]


def test_a_run_is_logged_with_its_parameters_metrics_and_curves(vertex, run_files):
    server, init = vertex
    target = vertex_targets.ExperimentTarget("admod-ads", PROJECT, LOCATION, TENSORBOARD)
    name = steps.log_experiment_step(**run_files, target=target, run_id=RUN_ID, vertex_init=init)
    assert name == RUN_ID
    context = _run_context(server)
    assert context["schemaTitle"] == "system.ExperimentRun"
    assert context["metadata"]["_state"] == "COMPLETE"
    assert context["metadata"]["_params"] == {"data_root": "gs://ads/data", "head_epochs": 15,
                                              "horizontal_flip": "true",
                                              "experiment": "admod-ads"}
    logged = context["metadata"]["_metrics"]
    assert logged["roc_auc"] == 0.9 and logged["blessed"] == 1 and logged["threshold"] == 0.61
    assert logged["ece"] == 0.9 and logged["ece_raw"] == 0.3
    assert logged["head_epochs_run"] == 3 and logged["fine_tune_epochs_run"] == 2
    assert server.store[f"{STORE}/contexts/admod-ads"]["metadata"][
        "backing_tensorboard_resource"] == TENSORBOARD
    children = [body for method, path, _, body in server.requests
                if path.endswith("contexts/admod-ads:addContextChildren")]
    assert children == [{"childContexts": [f"{STORE}/contexts/admod-ads-{RUN_ID}"]}]
    steps_written = [int(value["step"]) for body in _writes(server)
                     for value in body["timeSeriesData"][0]["values"]]
    assert steps_written == [1, 2, 3, 4, 5]  # both phases, numbered on

    # A retried step resumes the same run: values overwritten, the curves not written twice.
    steps.log_experiment_step(**run_files, target=target, run_id=RUN_ID, vertex_init=init)
    assert len(_writes(server)) == 5
    assert _run_context(server)["metadata"]["_metrics"]["roc_auc"] == 0.9
    # After an attempt that died midway (the run still RUNNING) the curves are written again.
    _run_context(server)["metadata"]["_state"] = "RUNNING"
    steps.log_experiment_step(**run_files, target=target, run_id=RUN_ID, vertex_init=init)
    assert len(_writes(server)) == 10


def test_a_refused_call_ends_in_one_sentence(vertex, run_files):
    server, init = vertex
    server.fail["metadataStores/default"] = 403
    target = vertex_targets.ExperimentTarget("admod-ads", PROJECT, LOCATION)
    with pytest.raises(AdmodError, match=rf"^Logging run {RUN_ID} to the Vertex AI Experiment "
                                         r"'admod-ads' failed: .*The model and the registry are "
                                         "not affected"):
        steps.log_experiment_step(**run_files, target=target, run_id=RUN_ID, vertex_init=init)


@pytest.mark.parametrize("values, problem", [
    ({"experiment": "Admod Ads", "vertex_project": "p", "vertex_location": "l"},
     "is not a valid Vertex AI Experiment name"),
    ({"experiment": "admod-ads"}, "needs vertex_project and vertex_location"),
    ({"experiment": "admod-ads", "vertex_project": "p", "vertex_location": "us-central1",
      "vertex_tensorboard": TENSORBOARD}, "is in europe-west4, not us-central1"),
    ({"vertex_tensorboard": TENSORBOARD}, "experiment is empty"),
])
def test_an_experiment_that_cannot_be_logged_to_is_refused_before_anything_runs(values,
                                                                                problem):
    assert any(problem in p for p in options.problems(values))


def test_the_run_name_fits_vertex(tmp_path):
    name = vertex_experiments.run_name("e" * 60, "Run_ID/With Spaces-" + "x" * 100)
    assert name.startswith("run-id-with-spaces-")
    assert len("e" * 60) + 1 + len(name) <= 128


def test_the_component_logs_from_its_parameters(vertex, run_files):
    from google.cloud import aiplatform
    from kfp.dsl import Artifact, Metrics, Model

    from admod.components import log_experiment

    server, init = vertex
    aiplatform.init(**init)  # what the step's environment gives: credentials, the endpoint
    log_experiment(parameters=Artifact(uri=run_files["parameters_path"]),
                   evaluation=Metrics(uri=run_files["evaluation_path"]),
                   head_model=Model(uri=run_files["head_dir"]),
                   fine_tune_model=Model(uri=run_files["fine_tune_dir"]),
                   experiment="admod-ads", vertex_project=PROJECT, vertex_location=LOCATION,
                   vertex_tensorboard="", run_id=RUN_ID)
    assert _run_context(server)["metadata"]["_metrics"]["head_best_val_loss"] == 0.4
    assert _writes(server) == []  # no TensorBoard given: no curves
