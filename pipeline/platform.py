"""Where each step runs: resources, GPUs, node pools, retries, for Kubeflow on GKE or Vertex AI.

GPU steps (train-head, fine-tune, evaluate) get an accelerator and, on Kubeflow, the GKE GPU
node pool (node selector + the nvidia.com/gpu taint toleration, through kfp-kubernetes), and
retry with backoff when a preemptible node goes away. The split's stages and push stay on CPU
nodes. Every
step gets CPU and memory limits (and requests on Kubeflow).
"""

import dataclasses

from kfp import kubernetes

KUBEFLOW, VERTEX = "kubeflow", "vertex"
DEFAULT_GPU_TYPE = {KUBEFLOW: "nvidia-tesla-t4", VERTEX: "NVIDIA_TESLA_T4"}
GKE_ACCELERATOR_LABEL = "cloud.google.com/gke-accelerator"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_STEPS = ("train-head", "fine-tune", "evaluate")
KUBEFLOW_RETRY_WINDOW = "604800s"  # 7 days: longer than any training step
VERTEX_RETRY_WINDOW = "3600s"

# step -> (CPUs, memory)
RESOURCES = {
    "check-parameters": ("1", "2G"),
    "list-images": ("1", "4G"),
    "check-images": ("4", "8G"),  # bounded: one partition, streamed
    "split": ("4", "16G"),
    "train-head": ("8", "32G"),
    "fine-tune": ("8", "32G"),
    "evaluate": ("4", "16G"),
    "push": ("2", "8G"),
    "log-experiment": ("1", "2G"),
}


@dataclasses.dataclass(frozen=True)
class Platform:
    name: str = KUBEFLOW
    gpu_type: str = ""  # empty: the platform's default
    gpu_count: int = 1
    retries: int = 3
    backoff: str = "120s"

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

    def place(self, task, step: str):
        """Applies this platform's settings for `step` to `task`; returns the task."""
        cpu, memory = RESOURCES[step]
        task.set_cpu_limit(cpu).set_memory_limit(memory)
        if self.name == KUBEFLOW:
            task.set_cpu_request(cpu).set_memory_request(memory)
        if step in GPU_STEPS:
            self._on_gpus(task)
        return task

    def _on_gpus(self, task) -> None:
        accelerator = GPU_RESOURCE if self.name == KUBEFLOW else self.gpu_type
        task.set_accelerator_type(accelerator).set_accelerator_limit(self.gpu_count)
        if self.name == KUBEFLOW:
            kubernetes.add_node_selector(task, GKE_ACCELERATOR_LABEL, self.gpu_type)
            kubernetes.add_toleration(task, key=GPU_RESOURCE, operator="Exists",
                                      effect="NoSchedule")
        task.set_retry(num_retries=self.retries, backoff_duration=self.backoff,
                       backoff_factor=2.0, backoff_max_duration=self.retry_window)
