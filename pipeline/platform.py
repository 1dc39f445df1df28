"""Where each step runs: resources, GPUs, node pools, retries, and the object store's
credentials, for Kubeflow on GKE or Vertex AI.

GPU steps (train-head, fine-tune, evaluate) get an accelerator and, on Kubeflow, the GKE GPU
node pool (node selector + the nvidia.com/gpu taint toleration, through kfp-kubernetes), and
retry with backoff when their pod fails, as it does when a preemptible node shuts down
gracefully. A pod deleted or evicted instead (a spot node reclaimed at once) ends as an Argo
Error, which Kubeflow does not retry: it compiles retries into Argo's retryStrategy with no
retryPolicy (backend/src/v2/compiler/argocompiler/container.go, getTaskRetryStrategyFromInput,
2.17.0), whose default, OnFailure, retries Failed pods only (kubeflow/pipelines#8381). Retrying
that run (the UI's Retry, or the API) re-runs its failed steps with the same output URIs, and
training resumes from `checkpoint_root` (README "Preemption"). The split's stages and push stay
on CPU nodes. Every step gets CPU and memory limits (and requests on Kubeflow).
"""

import dataclasses

from kfp import kubernetes

from admod.pipeline import task_names as names

KUBEFLOW, VERTEX = "kubeflow", "vertex"
DEFAULT_GPU_TYPE = {KUBEFLOW: "nvidia-tesla-t4", VERTEX: "NVIDIA_TESLA_T4"}
GKE_ACCELERATOR_LABEL = "cloud.google.com/gke-accelerator"
GPU_RESOURCE = "nvidia.com/gpu"
KUBEFLOW_RETRY_WINDOW = "604800s"  # 7 days: longer than any training step
VERTEX_RETRY_WINDOW = "3600s"

# Kubeflow Pipelines backend releases (kubeflow/pipelines tags), README "Supported backends":
# 2.5.0 is the first that substitutes {{$.pipeline_job_uuid}} (#11599) and compiles retries;
# 2.14.0 the first that collects a ParallelFor's artifacts and parameters (dsl.Collected,
# #11725: commit ed828b513a, first in tag 2.14.0); the split's fan-outs need both.
OLDEST_KFP = "2.5.0"
FAN_IN_KFP = "2.14.0"
# SecretAsEnv.optional (a secret that may be missing) is in kubernetes_executor_config.proto from
# tag 2.15.0; the drivers of 2.5.0 and 2.14.0 drop the unknown field (util.UnmarshalString), so
# there the secret is required.
OPTIONAL_SECRET_KFP = "2.15.0"

# The object store's credentials on Kubeflow: the stock install's MinIO secret (the launcher's
# own, backend/src/v2/objectstore at 2.14.0: mlpipeline-minio-artifact, keys accesskey and
# secretkey) as the variables boto3 reads. Never in the spec or the image: only the names.
STORE_SECRET = "mlpipeline-minio-artifact"
STORE_SECRET_KEYS = {"accesskey": "AWS_ACCESS_KEY_ID", "secretkey": "AWS_SECRET_ACCESS_KEY"}


def version_tuple(version: str) -> tuple[int, ...]:
    """(2, 14, 0) from '2.14.0' or 'v2.14.0'; ValueError when it is no release number."""
    parts = version.strip().lstrip("v").split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"--kfp-version '{version}' is not a Kubeflow Pipelines release "
                         f"number: pass one such as {FAN_IN_KFP}.")
    return tuple(int(p) for p in parts)

@dataclasses.dataclass(frozen=True)
class Step:
    """A step's policy: CPU and memory limits, whether it runs on GPUs, and whether it may
    reuse a cached result for identical inputs."""
    cpu: str
    memory: str
    gpu: bool = False
    cached: bool = False


# Every step, by its task name. Cached: check-images, gather-parts, merge-bucket, split,
# train-head and fine-tune, whose inputs an unchanged data root keeps identical (check-images
# takes its partition's fingerprint, not a fresh listing). Never: list-images (new files),
# evaluate (a new champion), push (it publishes), check-parameters and log-experiment (each
# run's own), and the one-task split, which lists the data itself.
STEPS = {
    names.CHECK_PARAMETERS: Step("1", "2G"),
    names.LIST_IMAGES: Step("1", "4G"),
    names.CHECK_IMAGES: Step("4", "8G", cached=True),  # bounded: one partition, streamed
    names.GATHER_PARTS: Step("1", "1G", cached=True),
    names.MERGE_BUCKET: Step("1", "4G", cached=True),  # one process: one bucket, streamed
    names.SPLIT: Step("2", "8G", cached=True),  # the manifest: rows only, streamed
    names.SPLIT_IN_ONE_TASK: Step("4", "16G"),
    names.TRAIN_HEAD: Step("8", "32G", gpu=True, cached=True),
    names.FINE_TUNE: Step("8", "32G", gpu=True, cached=True),
    names.EVALUATE: Step("4", "16G", gpu=True),
    names.PUSH: Step("2", "8G"),
    names.LOG_EXPERIMENT: Step("1", "2G"),
}
CACHEABLE_STEPS = tuple(name for name, step in STEPS.items() if step.cached)


@dataclasses.dataclass(frozen=True)
class Platform:
    name: str = KUBEFLOW
    gpu_type: str = ""  # empty: the platform's default
    gpu_count: int = 1
    retries: int = 3
    backoff: str = "120s"
    kfp_version: str = ""  # the Kubeflow Pipelines backend to run on; empty: the newest
    # Kubeflow: the secret whose accesskey/secretkey every step gets for s3:// and minio://
    # (None: STORE_SECRET where the backend lets it be missing, else none; "": none)
    store_secret: str | None = None
    store_endpoint: str = ""  # Kubeflow: AWS_ENDPOINT_URL for s3:// (minio:// needs none)

    @property
    def fan_in(self) -> bool:
        """Whether the split fans out over parallel check-images tasks and collects them, or
        runs as one task (a backend that cannot collect a loop's artifacts)."""
        return (self.name == VERTEX or not self.kfp_version
                or version_tuple(self.kfp_version) >= version_tuple(FAN_IN_KFP))

    @property
    def optional_secrets(self) -> bool:
        """Whether the backend mounts a secret that may be missing (OPTIONAL_SECRET_KFP)."""
        return self.name == KUBEFLOW and (
            not self.kfp_version
            or version_tuple(self.kfp_version) >= version_tuple(OPTIONAL_SECRET_KFP))

    @property
    def retry_window(self) -> str:
        """backoff_max_duration. Kubeflow compiles it into Argo's retryStrategy.backoff.maxDuration
        (kubeflow/pipelines 2.17.0, backend/src/v2/compiler/argocompiler/container.go), a window
        counted from the first attempt that also ends a running retry (argo-workflows #13044):
        it must outlast the longest GPU step, or a step preempted after it is never retried.
        Vertex AI caps each wait with it (waits here: 120, 240, 480 s)."""
        return KUBEFLOW_RETRY_WINDOW if self.name == KUBEFLOW else VERTEX_RETRY_WINDOW

    def __post_init__(self):
        if self.name not in (KUBEFLOW, VERTEX):
            raise ValueError(f"platform '{self.name}' is unknown: use {KUBEFLOW} or {VERTEX}.")
        if not self.gpu_type:
            object.__setattr__(self, "gpu_type", DEFAULT_GPU_TYPE[self.name])
        if self.kfp_version and self.name != KUBEFLOW:
            raise ValueError("--kfp-version names a Kubeflow Pipelines backend: drop it for "
                             f"{self.name}.")
        if self.store_secret is None:
            object.__setattr__(self, "store_secret",
                               STORE_SECRET if self.optional_secrets else "")
        if self.kfp_version and version_tuple(self.kfp_version) < version_tuple(OLDEST_KFP):
            raise ValueError(
                f"Kubeflow Pipelines {self.kfp_version} is older than {OLDEST_KFP}, the oldest "
                "backend admod runs on (it does not substitute the run's id and drops retries): "
                f"upgrade the backend (Kubeflow 1.10 ships {OLDEST_KFP}).")

    def place(self, task, name: str):
        """Applies the step `name`'s policy and this platform's settings to `task`; returns
        the task."""
        step = STEPS[name]
        task.set_cpu_limit(step.cpu).set_memory_limit(step.memory)
        if self.name == KUBEFLOW:
            task.set_cpu_request(step.cpu).set_memory_request(step.memory)
        task.set_caching_options(step.cached)
        if self.name == KUBEFLOW:
            self._store_credentials(task)
        if step.gpu:
            self._on_gpus(task)
        return task

    def _store_credentials(self, task) -> None:
        """The store's secret as boto3's variables: optional where the backend allows it, so
        that a namespace without it (gs:// and Workload Identity) still runs; the endpoint."""
        if self.store_secret:
            kubernetes.use_secret_as_env(
                task, self.store_secret, STORE_SECRET_KEYS,
                **({"optional": True} if self.optional_secrets else {}))
        if self.store_endpoint:
            task.set_env_variable("AWS_ENDPOINT_URL", self.store_endpoint)

    def _on_gpus(self, task) -> None:
        accelerator = GPU_RESOURCE if self.name == KUBEFLOW else self.gpu_type
        task.set_accelerator_type(accelerator).set_accelerator_limit(self.gpu_count)
        if self.name == KUBEFLOW:
            kubernetes.add_node_selector(task, GKE_ACCELERATOR_LABEL, self.gpu_type)
            kubernetes.add_toleration(task, key=GPU_RESOURCE, operator="Exists",
                                      effect="NoSchedule")
        task.set_retry(num_retries=self.retries, backoff_duration=self.backoff,
                       backoff_factor=2.0, backoff_max_duration=self.retry_window)
