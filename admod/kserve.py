"""A KServe InferenceService for a registry version: TF Serving on its exported SavedModel.

The predictor serves `<version>/saved_model/` (TF Serving finds the model in its `1/`), with
the signature admod exports: encoded image bytes in, `probability` and `label` out. Its
`runtimeVersion` is the tensorflow/serving image tag: without it KServe's TensorFlow runtime
runs tensorflow/serving:2.6.2 (kserve config/runtimes/kustomization.yaml), which refuses the
graph (ops it does not know, e.g. DisableCopyOnRead).
"""

import re

from admod import defaults, registry, storage
from admod.errors import AdmodError

# Storage that KServe's storage initializer downloads from (a local path is not one).
KSERVE_SCHEMES = ("gs://", "s3://", "pvc://", "https://", "hdfs://", "webhdfs://", "oci://")
# The oldest TensorFlow whose loader was seen to serve the export (README, "Which runtimes").
OLDEST_TF_SERVING = "2.12.1"
NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")  # a DNS-1035 label, as Kubernetes wants
VERSION = re.compile(r"\d+\.\d+\.\d+")  # a tensorflow/serving release tag


def inference_service(model: str, name: str = "admod-ad-classifier", namespace: str = "",
                      runtime_version: str = defaults.TF_SERVING_VERSION) -> dict:
    """The InferenceService (serving.kserve.io/v1beta1) for `model`: a registry root (its
    champion) or a version folder, served by tensorflow/serving:`runtime_version`."""
    if not VERSION.fullmatch(runtime_version) or _older(runtime_version, OLDEST_TF_SERVING):
        raise AdmodError(f"--runtime-version '{runtime_version}' is not a TF Serving release "
                         f"that serves admod's model: use {OLDEST_TF_SERVING} or later "
                         "(a tensorflow/serving image tag such as "
                         f"{defaults.TF_SERVING_VERSION}).")
    if not NAME.fullmatch(name) or len(name) > 45:
        raise AdmodError(f"--name '{name}' is not a valid InferenceService name: use lowercase "
                         "letters, digits and '-', starting with a letter, at most 45 characters.")
    if not model.startswith(KSERVE_SCHEMES):
        raise AdmodError(f"--model '{model}' is a local path, which KServe cannot download: pass "
                         "a gs:// registry_root or version (or s3://, pvc://, https://).")
    version = registry.resolve_version(model)
    metadata = {"name": name, "labels": {"app.kubernetes.io/name": "admod",
                                         "admod/version": version.rstrip("/").rsplit("/", 1)[-1]}}
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": metadata,
        "spec": {"predictor": {"model": {
            "modelFormat": {"name": "tensorflow"},
            "runtimeVersion": runtime_version,
            "storageUri": storage.join(version, registry.SAVED_MODEL_DIR),
            "resources": {"requests": {"cpu": "1", "memory": "2Gi"},
                          "limits": {"cpu": "2", "memory": "4Gi"}},
        }}},
    }


def _older(version: str, than: str) -> bool:
    return tuple(map(int, version.split("."))) < tuple(map(int, than.split(".")))
