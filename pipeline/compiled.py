"""What a compiled pipeline file says: the one place admod reads KFP's file format.

Its parameters (name, type, default), the images its steps run in, the platform it was compiled
for, and whether its split fans out.
"""

from admod.pipeline.platform import GPU_RESOURCE, KUBEFLOW, VERTEX


def documents(pipeline_file: str) -> list[dict]:
    """The file's YAML documents: the PipelineSpec, then (Kubeflow) the platform spec."""
    import yaml

    with open(pipeline_file) as f:
        return list(yaml.safe_load_all(f))


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
    return "exec-check-images" in documents(pipeline_file)[0]["deploymentSpec"]["executors"]
