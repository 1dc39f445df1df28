"""`admod serve-manifest`: a KServe InferenceService that the KServe CRD's own schema accepts.

The schema is the v1beta1 openAPIV3Schema of kserve/kserve's
config/crd/full/serving.kserve.io_inferenceservices.yaml at commit aaac4e294 (2026-08-21),
stored gzipped in tests/data. Validation is strict, as `kubectl apply --validate=strict` is:
a field the schema does not define is an error, not silently pruned.
"""

import copy
import gzip
import json
import os
import subprocess
import sys

import jsonschema
import pytest
import yaml

from admod import kserve, registry
from admod.errors import AdmodError

SCHEMA = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data",
                      "kserve-inferenceservice-v1beta1.schema.json.gz")


def _strict(schema):
    """Unknown fields rejected wherever the schema lists the fields and keeps no others."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if ("properties" in node and "additionalProperties" not in node
                    and not node.get("x-kubernetes-preserve-unknown-fields")):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


@pytest.fixture(scope="module")
def validator():
    with gzip.open(SCHEMA) as f:
        return jsonschema.Draft7Validator(_strict(json.load(f)))


@pytest.fixture
def gcs_registry(bucket, tmp_path):
    folder = tmp_path / "model"
    saved_model = folder / registry.SAVED_MODEL_DIR / registry.SERVING_VERSION
    saved_model.mkdir(parents=True)
    (saved_model / "saved_model.pb").write_bytes(b"x")
    root = f"gs://{bucket.name}/registry"
    uri, _ = registry.push(str(folder), root, expected_champion=None)
    return root, uri


def test_the_manifest_serves_the_champions_saved_model_and_the_crd_schema_accepts_it(
        gcs_registry, validator):
    root, version = gcs_registry
    manifest = kserve.inference_service(root, name="ads", namespace="moderation")
    errors = [e.message for e in validator.iter_errors(manifest)]
    assert errors == []
    predictor = manifest["spec"]["predictor"]["model"]
    assert predictor["storageUri"] == f"{version}/saved_model"  # TF Serving finds 1/ in it
    assert predictor["modelFormat"] == {"name": "tensorflow"}
    # Pinned: KServe's default TensorFlow runtime (tensorflow/serving:2.6.2) cannot load the
    # export; 2.15.1 is the version make test-tf-serving loads it with.
    assert predictor["runtimeVersion"] == "2.15.1"
    assert manifest["metadata"]["labels"]["admod/version"] == os.path.basename(version)
    assert manifest["metadata"]["namespace"] == "moderation"


def test_the_schema_check_would_catch_a_wrong_field(gcs_registry, validator):
    manifest = kserve.inference_service(gcs_registry[0])
    model = manifest["spec"]["predictor"]["model"]
    model["storageURI"] = model.pop("storageUri")  # a typo KServe would silently drop
    assert any("storageURI" in e.message for e in validator.iter_errors(manifest))


def test_the_command_prints_yaml_for_kubectl(gcs_registry, gcs_host, validator):
    root, version = gcs_registry
    result = subprocess.run([sys.executable, "-m", "admod.pipeline.cli", "serve-manifest",
                             "--model", version, "--name", "ads"],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "STORAGE_EMULATOR_HOST": gcs_host})
    assert result.returncode == 0, result.stderr
    manifest = yaml.safe_load(result.stdout)
    assert list(validator.iter_errors(manifest)) == []
    assert "namespace" not in manifest["metadata"]  # kubectl's current one
    assert result.stdout.startswith("# served by TF Serving 2.15.1")


def test_a_runtime_version_can_be_chosen_but_not_one_that_cannot_load_the_model(gcs_registry,
                                                                               validator):
    manifest = kserve.inference_service(gcs_registry[0], runtime_version="2.20.0")
    assert manifest["spec"]["predictor"]["model"]["runtimeVersion"] == "2.20.0"
    assert list(validator.iter_errors(manifest)) == []
    for refused in ("2.6.2", "2.12.0", "latest", "2.15"):
        with pytest.raises(AdmodError, match=f"--runtime-version '{refused}' is not a TF "
                                             "Serving release that serves admod's model"):
            kserve.inference_service(gcs_registry[0], runtime_version=refused)


@pytest.mark.parametrize("model, name, sentence", [
    ("/tmp/registry", "ads", "is a local path, which KServe cannot download"),
    ("gs://b/registry", "Ads_Model", "is not a valid InferenceService name"),
])
def test_what_kserve_cannot_use_is_one_sentence(model, name, sentence):
    with pytest.raises(AdmodError, match=sentence):
        kserve.inference_service(model, name=name)
