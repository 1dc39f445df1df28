"""Where admod writes in Vertex AI, and the rules a target must meet before anything runs: a
Model Registry model (ModelTarget) and an Experiment (ExperimentTarget). No Google Cloud client
here: admod.options checks the pipeline's parameters with these rules, and vertex_registry and
vertex_experiments write to the targets.
"""

import dataclasses
import re

from admod import defaults, storage
from admod.errors import AdmodError

RESOURCE = re.compile(r"^projects/([^/]+)/locations/([^/]+)/models/([^/@]+)$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_TENSORBOARD = re.compile(r"^projects/[^/]+/locations/([^/]+)/tensorboards/[^/]+$")


def _needs_project_and_location(what: str, project: str, location: str, remedy: str) -> None:
    if not (project and location):
        raise AdmodError(f"{what} needs vertex_project and vertex_location (admod submit "
                         f"--platform vertex fills them from --project and --region): {remedy}.")


@dataclasses.dataclass
class ModelTarget:
    """Where versions go: `model` is a display name or projects/P/locations/L/models/ID."""
    model: str
    project: str = ""
    location: str = ""
    serving_image: str = defaults.VERTEX_SERVING_IMAGE
    make_default: bool = False

    @classmethod
    def from_options(cls, options) -> "ModelTarget":
        """From an admod.options.VertexModelOptions."""
        return cls(options.vertex_model, options.vertex_project, options.vertex_location,
                   options.vertex_serving_image, options.vertex_default_alias)

    def __post_init__(self):
        if not self.model.strip():
            raise AdmodError("vertex_model is empty: pass a display name or a "
                             "projects/P/locations/L/models/ID resource name.")
        match = RESOURCE.match(self.model)
        if match:  # a resource name carries its own project and region
            self.project, self.location, _ = match.groups()
        elif self.model.startswith("projects/"):
            raise AdmodError(f"vertex_model '{self.model}' is not a model resource name: write "
                             "projects/P/locations/L/models/ID, or pass a display name.")
        _needs_project_and_location(f"vertex_model '{self.model}'", self.project, self.location,
                                    "pass both, or the model's resource name")

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.location}"


def check_model_target(values: dict) -> None:
    """Refuses, before anything runs, a vertex_model that cannot be resolved or a registry
    Vertex cannot read (pipeline parameters: vertex_model, vertex_project, vertex_location,
    registry_root)."""
    if values.get("vertex_model"):
        ModelTarget(values["vertex_model"], values.get("vertex_project", ""),
               values.get("vertex_location", ""))
        if "registry_root" in values:
            cloud_uri(values["registry_root"])


def cloud_uri(uri: str) -> str:
    """`uri` as the gs:// URI Vertex AI reads artifacts from (a /gcs/ path is the same object
    through Vertex's Cloud Storage mount)."""
    if uri.startswith("/gcs/"):
        return storage.GCS_SCHEME + uri[len("/gcs/"):]
    if not storage.is_gcs(uri):
        raise AdmodError(f"registry_root '{uri}' is not in Cloud Storage, where Vertex AI "
                         "serves model versions from: use a gs://BUCKET/PATH registry_root with "
                         "vertex_model.")
    return uri


@dataclasses.dataclass
class ExperimentTarget:
    experiment: str
    project: str
    location: str
    tensorboard: str = ""  # projects/P/locations/L/tensorboards/ID, or none

    @classmethod
    def from_options(cls, options) -> "ExperimentTarget":
        """From admod.options.ExperimentOptions."""
        return cls(options.experiment, options.vertex_project, options.vertex_location,
                   options.vertex_tensorboard)

    def __post_init__(self):
        if not _NAME.match(self.experiment):
            raise AdmodError(f"experiment '{self.experiment}' is not a valid Vertex AI "
                             "Experiment name: use lowercase letters, digits and hyphens, 64 "
                             "characters at most.")
        _needs_project_and_location(f"experiment '{self.experiment}'", self.project,
                                    self.location, "pass both")
        match = _TENSORBOARD.match(self.tensorboard)
        if self.tensorboard and not match:
            raise AdmodError(f"vertex_tensorboard '{self.tensorboard}' is not a TensorBoard "
                             "resource name: pass projects/P/locations/L/tensorboards/ID.")
        if match and match.group(1) != self.location:
            raise AdmodError(f"vertex_tensorboard '{self.tensorboard}' is in "
                             f"{match.group(1)}, not {self.location}: use a TensorBoard in "
                             "the experiment's location.")


def check_experiment_target(values: dict) -> None:
    """Refuses, before anything runs, an experiment that cannot be logged to."""
    if values.get("experiment"):
        ExperimentTarget(values["experiment"], values.get("vertex_project", ""),
               values.get("vertex_location", ""), values.get("vertex_tensorboard", ""))
    elif values.get("vertex_tensorboard"):
        raise AdmodError("vertex_tensorboard is set but experiment is empty: the curves are "
                         "logged to an experiment's runs; pass -p experiment=NAME too.")
