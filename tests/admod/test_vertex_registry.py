"""The Vertex AI Model Registry mirror, through the real aiplatform_v1 client against a fake
Vertex REST API: the request bodies, the champion alias moving, and an upload that fails after
admod's push, finished by sync without a duplicate version."""

import json
import os

import pytest

from admod.errors import USER_ERROR_STATUS
from admod import defaults, options, registry, vertex_registry, vertex_targets
from admod.errors import AdmodError
from admod.options import DEFAULTS
from tests.support.fake_vertex import LOCATION, PARENT, PROJECT, fake_vertex, model_service
from tests.support import results

TARGET = vertex_targets.ModelTarget("admod-ads", PROJECT, LOCATION)


INTERVALS = {"accuracy": [0.8, 0.97], "roc_auc": [0.9, 0.99]}
SLICES = [{"dimension": "format", "value": "JPEG", "count": 30, "not_allowed": 9,
           "figures": {"accuracy": 0.9, "precision": 0.88, "recall": 0.78, "f1": 0.83,
                       "roc_auc": 0.94, "pr_auc": 0.9, "ece": 0.04},
           "intervals": {}, "gated": False, "champion_difference": None},
          {"dimension": "shape", "value": "portrait", "count": 4, "not_allowed": 0,
           "figures": {"accuracy": 0.75}, "intervals": {}, "gated": False,
           "champion_difference": None}]


def _version_files(folder, accuracy: float, run: str) -> str:
    """What push writes that Vertex reads: model_info.json (lineage) and metrics.json."""
    os.makedirs(folder)
    scores = {"threshold": 0.62, "count": 40, "accuracy": accuracy, "precision": 0.9,
              "recall": 0.8, "f1": 0.847, "roc_auc": 0.95, "pr_auc": 0.91, "brier": 0.08,
              "ece": 0.031, "confusion_matrix": [[25, 2], [3, 10]]}
    info = results.model_info(image_size=64, threshold=0.62, lineage={
        "pipeline_run_id": run, "data_fingerprint": "ab" * 32, "parent_champion": None}).to_json()
    metrics = {"split": "test", "threshold": 0.62, "threshold_rule": "min_precision>=0.9",
               "scores": scores, "scores_at_0_5": {**scores, "threshold": 0.5, "precision": 0.85},
               "calibration": {"method": "platt", "slope": 0.5, "intercept": -0.8,
                               "raw_threshold": 0.83, "ece_raw": 0.212, "brier_raw": 0.11},
               "intervals": INTERVALS, "optimistic": "", "slices": SLICES}
    for name, data in ((registry.MODEL_INFO_FILE, info), (registry.METRICS_FILE, metrics)):
        with open(os.path.join(folder, name), "w") as f:
            json.dump(data, f)
    return str(folder)


def _push(tmp_path, root, name, accuracy=0.9):
    uri, _ = registry.push(_version_files(tmp_path / name, accuracy, f"run-{name}"), root,
                           expected_champion=registry.champion(root))
    return os.path.basename(uri)


def _posts(server, suffix):
    return [body for method, path, _, body in server.requests
            if method == "POST" and path.endswith(suffix)]


@pytest.fixture
def vertex():
    with fake_vertex() as (server, url):
        yield server, model_service(url)


def test_each_champion_becomes_a_version_of_one_model_with_its_evaluation_and_alias(
        tmp_path, bucket, vertex):
    server, api = vertex
    root = f"gs://{bucket.name}/registry"
    first = _push(tmp_path, root, "first")
    name = vertex_registry.publish(root, first, TARGET, api)
    assert name == f"{PARENT}/models/1000@1"
    (upload,) = _posts(server, "models:upload")
    assert "parentModel" not in upload  # created on first use
    model = upload["model"]
    assert model["displayName"] == "admod-ads"
    assert model["artifactUri"] == f"{root}/{first}/saved_model/1"
    assert model["containerSpec"] == {"imageUri": DEFAULTS.vertex_serving_image}
    assert model["labels"] == {"admod_version": first, "admod_run": "run-first",
                               "admod_data": "ab" * 8}
    assert "accuracy 0.9000" in model["description"]
    assert "operating threshold 0.6200" in model["description"]
    assert "calibration platt, ECE 0.0310 (raw 0.2120)" in model["description"]
    (imported,) = _posts(server, "evaluations:import")
    evaluation = imported["modelEvaluation"]
    assert evaluation["metricsSchemaUri"] == vertex_registry.CLASSIFICATION_SCHEMA
    assert evaluation["metrics"]["confusionMatrix"]["rows"] == [[25, 2], [3, 10]]
    assert [s["displayName"] for s in evaluation["metrics"]["confusionMatrix"][
        "annotationSpecs"]] == list(defaults.CLASS_NAMES)
    assert [c["confidenceThreshold"] for c in evaluation["metrics"]["confidenceMetrics"]] == [
        0.5, 0.62]
    assert evaluation["metadata"] == {"calibration": "platt", "ece": 0.031, "ece_raw": 0.212,
                                      "brier": 0.08, "brier_raw": 0.11, "raw_threshold": 0.83,
                                      "intervals": INTERVALS, "optimistic": ""}
    (sliced,) = _posts(server, "slices:batchImport")
    jpeg, portrait = sliced["modelEvaluationSlices"]
    assert jpeg["slice"] == {"dimension": "format", "value": "JPEG"}
    assert jpeg["metricsSchemaUri"] == vertex_registry.CLASSIFICATION_SCHEMA
    assert jpeg["metrics"] == {"auRoc": 0.94, "auPrc": 0.9, "confidenceMetrics": [
        {"confidenceThreshold": 0.62, "precision": 0.88, "recall": 0.78, "f1Score": 0.83}]}
    assert portrait["slice"] == {"dimension": "shape", "value": "portrait"}
    vertex_registry.publish(root, first, TARGET, api)  # again: nothing imported twice
    assert len(_posts(server, "slices:batchImport")) == 1
    assert _posts(server, "@1:mergeVersionAliases") == [{"versionAliases": ["champion"]}]

    second = _push(tmp_path, root, "second", accuracy=0.95)
    target = vertex_targets.ModelTarget("admod-ads", PROJECT, LOCATION, make_default=True)
    assert vertex_registry.publish(root, second, target, api) == f"{PARENT}/models/1000@2"
    assert _posts(server, "models:upload")[1]["parentModel"] == f"{PARENT}/models/1000"
    versions = server.models["1000"]
    assert versions[0]["versionAliases"] == []  # champion and default moved on
    assert sorted(versions[1]["versionAliases"]) == ["champion", "default"]


def test_an_upload_that_fails_after_the_push_is_finished_by_sync_without_a_duplicate(
        tmp_path, bucket, vertex):
    server, api = vertex
    root = f"gs://{bucket.name}/registry"
    version = _push(tmp_path, root, "only")
    server.fail["evaluations:import"] = 403  # uploaded, then the evaluation import refused
    with pytest.raises(AdmodError, match=rf"^Version {version} is stored complete in .*, but its "
                       r"upload to the Vertex AI Model Registry \(admod-ads\) failed: .*403.*"
                       r"retry the push step \(the run's Retry\) or run 'admod registry sync "
                       rf"{root} --vertex-model admod-ads --project proj --region europe-west4' "
                       "to finish it.$"):
        vertex_registry.publish(root, version, TARGET, api)
    assert registry.champion(root) == version  # admod's registry is untouched
    assert len(server.models["1000"]) == 1 and server.models["1000"][0]["evaluations"] == []
    server.fail.clear()

    assert vertex_registry.sync(root, TARGET, api) == [f"{PARENT}/models/1000@1"]
    assert len(_posts(server, "models:upload")) == 1  # found again by its label
    (only,) = server.models["1000"]
    assert len(only["evaluations"]) == 1 and only["versionAliases"] == ["default", "champion"]
    calls = len(server.requests)
    vertex_registry.sync(root, TARGET, api)
    assert [m for m, *_ in server.requests[calls:]] == ["GET"] * (len(server.requests) - calls)


def test_a_model_resource_name_is_created_with_its_id_and_name_clashes_are_refused(
        tmp_path, bucket, vertex):
    server, api = vertex
    root = f"gs://{bucket.name}/registry"
    version = _push(tmp_path, root, "named")
    # A resource name carries its own project and region, whatever the run's are.
    target = vertex_targets.ModelTarget(f"{PARENT}/models/ads-moderation", "other", "us-central1")
    assert (target.project, target.location) == (PROJECT, LOCATION)
    assert vertex_registry.publish(root, version, target, api) == (
        f"{PARENT}/models/ads-moderation@1")
    assert _posts(server, "models:upload")[0]["modelId"] == "ads-moderation"
    server.models["2000"] = [{**server.models["ads-moderation"][0], "displayName": "twice"}]
    server.models["2001"] = [{**server.models["ads-moderation"][0], "displayName": "twice"}]
    with pytest.raises(AdmodError, match="2 Vertex models are named 'twice'.*pass the resource "
                                         "name of one as vertex_model"):
        vertex_registry.publish(root, version,
                                vertex_targets.ModelTarget("twice", PROJECT, LOCATION), api)


@pytest.mark.parametrize("values, problem", [
    ({"vertex_model": "admod-ads"}, "needs vertex_project and vertex_location"),
    ({"vertex_model": "projects/proj/models/7"}, "is not a model resource name"),
    ({"vertex_model": "m", "vertex_project": "p", "vertex_location": "l",
      "registry_root": "/home/me/models"}, "registry_root '/home/me/models' is not in Cloud"),
])
def test_a_vertex_model_that_cannot_be_resolved_is_refused_before_anything_runs(values,
                                                                                 problem):
    assert any(problem in p for p in options.problems(values))


def test_registry_sync_from_the_command_line(tmp_path, bucket, vertex, monkeypatch, capsys):
    from admod.pipeline.cli import main

    server, api = vertex
    root = f"gs://{bucket.name}/registry"
    for name in ("older", "newer"):
        _push(tmp_path, root, name)
    monkeypatch.setattr(vertex_registry, "client", lambda location: api)
    assert main(["registry", "sync", root, "--vertex-model", f"{PARENT}/models/ads"]) == 0
    assert capsys.readouterr().out.split() == [f"{PARENT}/models/ads@1", f"{PARENT}/models/ads@2"]
    assert [v["versionAliases"] for v in server.models["ads"]] == [["default"], ["champion"]]
    # no project, no region
    assert main(["registry", "sync", root, "--vertex-model", "ads"]) == USER_ERROR_STATUS
    assert "needs vertex_project and vertex_location" in capsys.readouterr().err


def test_a_registry_vertex_mounts_under_gcs_is_served_from_its_bucket():
    assert vertex_targets.cloud_uri("/gcs/ads/registry/v1/saved_model/1") == (
        "gs://ads/registry/v1/saved_model/1")


def test_no_credentials_end_in_one_sentence(monkeypatch):
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    def no_credentials(*args, **kwargs):
        raise DefaultCredentialsError("none found")

    monkeypatch.setattr(google.auth, "default", no_credentials)
    with pytest.raises(AdmodError, match="^No Google Cloud credentials for Vertex AI: run "):
        vertex_registry.client(LOCATION)
