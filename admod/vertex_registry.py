"""admod's registry versions mirrored into the Vertex AI Model Registry.

admod's registry stays the source of truth; Vertex gets, for each complete version, a version of
one parent model (created on first use) whose artifact is that version's SavedModel in place (no
copy), served by a prebuilt TensorFlow image, labelled with the admod version, run and data, and
carrying the evaluation as a Model Evaluation. The champion holds the Vertex alias `champion`
(and `default` when asked). Every call is idempotent: a version is found again by its
`admod_version` label, an evaluation by its display name, so a retried push or `admod registry
sync` finishes what a failed upload left and never duplicates a version.

All calls go through google-cloud-aiplatform's `aiplatform_v1.ModelServiceClient`.
"""

import dataclasses
import logging
import re

from admod import registry, results, storage
from admod.errors import AdmodError, brief, google_cloud_errors
from admod.vertex_targets import RESOURCE, ModelTarget, cloud_uri
from admod.metric_names import GATING_METRICS, threshold_text
from admod.results import Evaluation, ModelInfo

log = logging.getLogger(__name__)
CHAMPION_ALIAS = "champion"
DEFAULT_ALIAS = "default"
VERSION_LABEL = "admod_version"
CLASSIFICATION_SCHEMA = ("gs://google-cloud-aiplatform/schema/modelevaluation/"
                         "classification_metrics_1.0.0.yaml")


def client(location: str):
    """A Vertex AI model service client for `location`'s regional endpoint, with the
    environment's credentials; no credentials end in one sentence."""
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import aiplatform_v1

    try:
        return aiplatform_v1.ModelServiceClient(
            client_options={"api_endpoint": f"{location}-aiplatform.googleapis.com"})
    except DefaultCredentialsError:
        raise AdmodError("No Google Cloud credentials for Vertex AI: run 'gcloud auth "
                         "application-default login', set GOOGLE_APPLICATION_CREDENTIALS, or "
                         "give the step a service account.") from None


def label_value(text: str) -> str:
    """`text` as a label value: lowercase letters, digits, - and _, at most 63 characters."""
    return re.sub(r"[^a-z0-9_-]", "-", str(text).lower())[:63]


@dataclasses.dataclass
class Version:
    """What Vertex needs of one admod registry version, read from its files."""
    name: str
    uri: str
    info: ModelInfo  # model_info.json (threshold, lineage)
    metrics: Evaluation  # metrics.json

    @classmethod
    def read(cls, registry_root: str, name: str) -> "Version":
        uri = storage.join(registry_root, name)
        return cls(name, uri, results.read(ModelInfo, storage.join(uri, registry.MODEL_INFO_FILE)),
                   results.read(Evaluation, storage.join(uri, registry.METRICS_FILE)))

    def labels(self) -> dict:
        lineage = self.info.lineage
        labels = {VERSION_LABEL: label_value(self.name),
                  "admod_run": label_value(lineage.get("pipeline_run_id") or ""),
                  "admod_data": label_value((lineage.get("data_fingerprint") or "")[:16])}
        return {key: value for key, value in labels.items() if value}

    def description(self) -> str:
        scores = self.metrics.scores
        figures = ", ".join(f"{name} {scores[name]:.4f}" for name in GATING_METRICS)
        return (f"admod version {self.name} ({self.uri}). On {self.metrics.split} "
                f"({scores['count']} images, positive class not_allowed_ads) at the operating "
                f"threshold {threshold_text(self.metrics.threshold)} "
                f"({self.metrics.threshold_rule}): "
                f"{figures}; {_calibration_text(self.metrics)}.")


def _calibration_text(metrics: Evaluation) -> str:
    facts = evaluation_metadata(metrics)
    return (f"probability calibration {facts['calibration']}, ECE {facts['ece']:.4f} "
            f"(raw {facts['ece_raw']:.4f})")


def _model_proto(version: Version, target: ModelTarget, display_name: str):
    from google.cloud.aiplatform_v1 import types

    return types.Model(
        display_name=display_name, description=version.description(),
        artifact_uri=cloud_uri(registry.serving_model_dir(version.uri)),
        container_spec=types.ModelContainerSpec(image_uri=target.serving_image),
        labels=version.labels())


def evaluation_metrics(metrics: Evaluation, class_names: list[str]) -> dict:
    """metrics.json as Vertex's classification metrics schema: areas, confusion matrix and the
    confidence metrics at 0.5 and at the operating threshold."""
    def confidence(scores: dict) -> dict:
        return {"confidenceThreshold": scores["threshold"], "precision": scores["precision"],
                "recall": scores["recall"], "f1Score": scores["f1"]}

    scores, at_half = metrics.scores, metrics.scores_at_0_5
    return {"auRoc": scores["roc_auc"], "auPrc": scores["pr_auc"],
            "confidenceMetrics": sorted([confidence(at_half), confidence(scores)],
                                        key=lambda entry: entry["confidenceThreshold"]),
            "confusionMatrix": {
                "annotationSpecs": [{"id": str(i), "displayName": name}
                                    for i, name in enumerate(class_names)],
                "rows": scores["confusion_matrix"]}}


def slice_metrics(found: dict, threshold: float) -> dict:
    """One slice's figures in Vertex's classification metrics schema: the areas and the
    operating point (what the slice has; a slice of one class has its accuracy alone, which
    the schema cannot hold)."""
    figures = found["figures"]
    metrics = {"auRoc": figures["roc_auc"], "auPrc": figures["pr_auc"]} if "roc_auc" in figures \
        else {}
    if "precision" in figures:
        metrics["confidenceMetrics"] = [{
            "confidenceThreshold": threshold, "precision": figures["precision"],
            "recall": figures["recall"], "f1Score": figures["f1"]}]
    return metrics


def evaluation_metadata(metrics: Evaluation) -> dict:
    """What the classification schema has no field for: the calibration of the served
    probability, with its Brier score and ECE before and after."""
    calibration, scores = metrics.calibration, metrics.scores
    return {"intervals": metrics.intervals,  # 95%, stratified bootstrap
            "optimistic": metrics.optimistic, "calibration": calibration.method,
            "ece": scores["ece"], "ece_raw": calibration.ece_raw,
            "brier": scores["brier"], "brier_raw": calibration.brier_raw,
            "raw_threshold": calibration.raw_threshold}


class Publisher:
    """Publishes admod registry versions to one Vertex parent model through `api` (a
    ModelServiceClient); the parent is looked up once, then remembered."""

    def __init__(self, target: ModelTarget, api):
        self.target, self.api = target, api
        self._parent: str | None = None

    def parent_model(self) -> str | None:
        """The parent model's resource name, None when it does not exist yet."""
        if self._parent is None:
            self._parent = self._find_parent()
        return self._parent

    def _find_parent(self) -> str | None:
        from google.api_core import exceptions

        if RESOURCE.match(self.target.model):
            try:
                return self.api.get_model(name=self.target.model).name
            except exceptions.NotFound:
                return None
        escaped = self.target.model.replace('"', '\\"')
        found = [m.name for m in self.api.list_models(request={
            "parent": self.target.parent, "filter": f'display_name="{escaped}"'})]
        if len(found) > 1:
            raise AdmodError(f"{len(found)} Vertex models are named '{self.target.model}' "
                             f"({', '.join(found)}): pass the resource name of one as "
                             "vertex_model.")
        return found[0] if found else None

    def _existing(self, parent: str, version: Version):
        listed = self.api.list_model_versions(request={
            "name": parent, "filter": f'labels.{VERSION_LABEL}="{label_value(version.name)}"'})
        return next(iter(listed), None)

    def _upload(self, parent: str | None, version: Version) -> str:
        """Uploads `version` (a new parent model when `parent` is None); its version name."""
        from google.cloud.aiplatform_v1 import types

        match = RESOURCE.match(self.target.model)
        display_name = self.target.model if not match else f"admod-{match.group(3)}"
        request = types.UploadModelRequest(
            parent=self.target.parent, model=_model_proto(version, self.target, display_name),
            parent_model=parent or "", model_id="" if parent or not match else match.group(3))
        response = self.api.upload_model(request=request).result()
        log.info("uploaded %s to Vertex AI as %s@%s", version.name, response.model,
                 response.model_version_id)
        return f"{response.model}@{response.model_version_id}"

    def _import_evaluation(self, name: str, version: Version) -> None:
        from google.cloud.aiplatform_v1 import types
        from google.protobuf import json_format, struct_pb2

        display_name = f"admod {version.name} on {version.metrics.split}"
        found = [e for e in self.api.list_model_evaluations(parent=name)
                 if e.display_name == display_name]
        if found:
            imported = found[0]
        else:
            class_names = list(version.info.class_names)
            metrics, metadata = (
                json_format.ParseDict(value, struct_pb2.Value())
                for value in (evaluation_metrics(version.metrics, class_names),
                              evaluation_metadata(version.metrics)))
            imported = self.api.import_model_evaluation(
                parent=name, model_evaluation=types.ModelEvaluation(
                    display_name=display_name, metrics_schema_uri=CLASSIFICATION_SCHEMA,
                    metrics=metrics, metadata=metadata))
            log.info("imported the evaluation of %s into %s", version.name, name)
        self._import_slices(imported.name, version)

    def _import_slices(self, evaluation: str, version: Version) -> None:
        """The evaluation's slices (format, shape, size), unless they are there already (a
        sync finishing an import that failed half-way)."""
        from google.cloud.aiplatform_v1 import types
        from google.protobuf import json_format, struct_pb2

        wanted = version.metrics.slices
        if not wanted or any(True for _ in self.api.list_model_evaluation_slices(
                parent=evaluation)):
            return
        self.api.batch_import_model_evaluation_slices(parent=evaluation, model_evaluation_slices=[
            types.ModelEvaluationSlice(
                slice_=types.ModelEvaluationSlice.Slice(dimension=s["dimension"],
                                                        value=s["value"]),
                metrics_schema_uri=CLASSIFICATION_SCHEMA,
                metrics=json_format.ParseDict(slice_metrics(s, version.metrics.threshold),
                                              struct_pb2.Value()))
            for s in wanted])
        log.info("imported %d evaluation slices of %s", len(wanted), version.name)

    def publish(self, version: Version, champion: bool) -> str:
        """Makes `version` a Vertex version of the parent model (uploading it unless a version
        with its label exists), with its evaluation, and the champion alias when `champion`.
        Returns the Vertex version's name, projects/P/locations/L/models/ID@N."""
        parent = self.parent_model()
        existing = self._existing(parent, version) if parent else None
        if existing is None:
            name = self._upload(parent, version)
            self._parent = name.split("@")[0]
            aliases = set()
        else:
            name = f"{existing.name}@{existing.version_id}"
            aliases = set(existing.version_aliases)
            log.info("%s is already Vertex version %s", version.name, name)
        self._import_evaluation(name, version)
        wanted = ({CHAMPION_ALIAS} | ({DEFAULT_ALIAS} if self.target.make_default else set())
                  if champion else set())
        if wanted - aliases:
            self.api.merge_version_aliases(name=name, version_aliases=sorted(wanted - aliases))
            log.info("%s is now Vertex's %s", name, " and ".join(sorted(wanted)))
        return name


def publish(registry_root: str, version: str, target: ModelTarget, api=None) -> str:
    """Publishes one complete admod version through `api` (default: `client`); the Vertex
    version's name. Any failure ends in one AdmodError saying the admod version is safe and how
    to finish."""
    (name,) = _publish_all(registry_root, [version], target, api)
    return name


def sync(registry_root: str, target: ModelTarget, api=None) -> list[str]:
    """Publishes every complete version, oldest first (the champion alias to the champion);
    returns their Vertex version names."""
    return _publish_all(registry_root, registry.complete_versions(registry_root), target, api)


def _publish_all(registry_root: str, versions: list[str], target: ModelTarget, api) -> list[str]:
    cloud_uri(registry_root)
    publisher = Publisher(target, api or client(target.location))
    champion = registry.champion(registry_root)
    return [_publish_one(publisher, registry_root, version, version == champion)
            for version in versions]


def _publish_one(publisher: Publisher, registry_root: str, version: str, champion: bool) -> str:
    target = publisher.target
    try:
        return publisher.publish(Version.read(registry_root, version), champion)
    except google_cloud_errors() as error:
        raise AdmodError(
            f"Version {version} is stored complete in {registry_root}, but its upload to the "
            f"Vertex AI Model Registry ({target.model}) failed: {brief(error)}. Nothing is "
            "lost: retry the push step (the run's Retry) or run 'admod registry sync "
            f"{registry_root} --vertex-model {target.model} --project {target.project} --region "
            f"{target.location}' to finish it.") from error
