"""Compiling the pipeline, and what a compiled pipeline file says: the one place admod reads
KFP's file format.

Its parameters (name, type, default), the images its steps run in, the platform it was compiled
for, and whether its split fans out.
"""

from admod import components
from admod.errors import AdmodError
from admod.pipeline import pipeline
from admod.pipeline import task_names as names
from admod.pipeline.platform import GPU_RESOURCE, KUBEFLOW, VERTEX, Platform


def write_pipeline(output: str, image: str | None = None, platform: str = KUBEFLOW,
                   gpu_type: str | None = None, gpu_count: int = 1, kfp_version: str = "",
                   store_secret: str | None = None, store_endpoint: str = "") -> str:
    """Compiles the pipeline for `platform` (a Kubeflow Pipelines backend `kfp_version`, empty:
    the newest) with every step in `image` (and, on Kubeflow, the object store's secret and
    endpoint: platform.Platform) into `output`; returns a summary."""
    from kfp import compiler

    try:
        target = Platform(platform, gpu_type or "", gpu_count, kfp_version=kfp_version or "",
                          store_secret=store_secret, store_endpoint=store_endpoint or "")
    except ValueError as error:
        raise AdmodError(str(error)) from None
    compiler.Compiler().compile(pipeline.build(target, image or components.DEFAULT_IMAGE), output)
    backend = f" {kfp_version}" if kfp_version else ""
    split = "fanned out" if target.fan_in else "in one task"
    return (f"compiled {output} for {target.name}{backend} ({target.gpu_count} x "
            f"{target.gpu_type}; split {split})")


def documents(pipeline_file: str) -> list[dict]:
    """The file's YAML documents: the PipelineSpec, then (Kubeflow) the platform spec."""
    import yaml

    # libyaml's safe loader where PyYAML has it: the same documents, parsed ten times faster
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(pipeline_file) as f:
        return list(yaml.load_all(f, Loader=loader))


def declared_parameters(pipeline_file: str) -> dict[str, tuple[str, object]]:
    """name -> (KFP type, default or None) of a compiled pipeline's parameters."""
    inputs = documents(pipeline_file)[0]["root"]["inputDefinitions"]["parameters"]
    return {name: (p["parameterType"], p.get("defaultValue")) for name, p in inputs.items()}


def pipeline_images(pipeline_file: str) -> set[str]:
    executors = documents(pipeline_file)[0]["deploymentSpec"]["executors"].values()
    return {e["container"]["image"] for e in executors if "container" in e}


def compiled_for(pipeline_file: str) -> str:
    """The platform a pipeline file was compiled for, from what its GPU steps request: Kubeflow
    asks Kubernetes for `nvidia.com/gpu` and carries a second (platform) document; Vertex AI
    names the accelerator (NVIDIA_TESLA_T4...)."""
    found = documents(pipeline_file)
    accelerators = {executor.get("container", {}).get("resources", {}).get("accelerator", {})
                    .get("resourceType") for executor in
                    found[0]["deploymentSpec"]["executors"].values()} - {None}
    kubeflow = len(found) > 1 or accelerators == {GPU_RESOURCE}
    return KUBEFLOW if kubeflow else VERTEX


def fans_in(pipeline_file: str) -> bool:
    """Whether the spec collects a loop's artifacts (the fanned-out split)."""
    executors = documents(pipeline_file)[0]["deploymentSpec"]["executors"]
    return f"exec-{names.CHECK_IMAGES}" in executors
