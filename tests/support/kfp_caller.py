"""KFP's resource setters (set_cpu_limit, set_memory_request, set_accelerator_type, ...) each call
PipelineTask._ensure_container_spec_exists, which names its caller with inspect.stack()
(kfp/dsl/pipeline_task.py, kfp 2.17.3) for an error admod never meets. inspect.stack() resolves
the module of every frame: in a test process, about 40 frames deep with TensorFlow's 5,000
modules loaded, a call took 20 ms and a compile of the pipeline (30 such calls) about a second,
over a minute of the suite's CPU. `admod compile` itself, shallow and without TensorFlow,
compiles in 0.13 s. Tests name the caller from its frame instead; the error is KFP's word for
word (tests/pipeline/test_compile.py compares the two)."""

import sys

from kfp.dsl import pipeline_task

KFP_CHECK = pipeline_task.PipelineTask._ensure_container_spec_exists


def ensure_container_spec_exists(self) -> None:
    if self.container_spec is None:
        raise ValueError(
            f"{sys._getframe(1).f_code.co_name} can only be used on single-step components, not "
            "pipelines used as components, or special components like importers.")


def name_callers_cheaply() -> None:
    pipeline_task.PipelineTask._ensure_container_spec_exists = ensure_container_spec_exists
