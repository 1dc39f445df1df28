"""A KServe InferenceService for a registry version: TF Serving on its exported SavedModel.

The predictor serves `<version>/saved_model/` (TF Serving finds the model in its `1/`), with
the signature admod exports: encoded image bytes in, `probability` and `label` out.
"""

import re

from admod import registry, storage
from admod.errors import AdmodError

# Storage that KServe's storage initializer downloads from (a local path is not one).
KSERVE_SCHEMES = ("gs://", "s3://", "pvc://", "https://", "hdfs://", "webhdfs://", "oci://")
NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")  # a DNS-1035 label, as Kubernetes wants


def inference_service(model: str, name: str = "admod-ad-classifier",
                      namespace: str = "") -> dict:
    """The InferenceService (serving.kserve.io/v1beta1) for `model`: a registry root (its
    champion) or a version folder."""
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
            "storageUri": storage.join(version, registry.SAVED_MODEL_DIR),
            "resources": {"requests": {"cpu": "1", "memory": "2Gi"},
                          "limits": {"cpu": "2", "memory": "4Gi"}},
        }}},
    }
