"""The pipeline's steps as KFP components: thin wrappers over admod.steps.

Each module holds one step's Python function; `build` turns them into components that run in
a given container image. The image is bound when the pipeline is built (`admod compile
--image`), and kfp is never pip-installed at run time: the image ships it.
"""

import types

from kfp import dsl

from admod.components.check_images import check_images
from admod.components.check_parameters import check_parameters
from admod.components.evaluate import evaluate
from admod.components.fine_tune import fine_tune
from admod.components.gather_parts import gather_parts
from admod.components.list_images import list_images
from admod.components.log_experiment import log_experiment
from admod.components.merge_bucket import merge_bucket
from admod.components.push import push
from admod.components.split import split
from admod.components.split_in_one_task import split_in_one_task
from admod.components.train_head import train_head

# The image pipeline.yaml names: containers/cloudbuild.yaml's default _IMAGE:_TAG.
DEFAULT_IMAGE = "us-docker.pkg.dev/admod-project/admod/trainer:0.1.0"
STEP_FUNCTIONS = (check_parameters, list_images, check_images, gather_parts, merge_bucket, split,
                  split_in_one_task, train_head, fine_tune, evaluate, push, log_experiment)


def build(image: str = DEFAULT_IMAGE) -> types.SimpleNamespace:
    """The components, each running in `image`: .list_images, .split, .train_head, ... ."""
    return types.SimpleNamespace(**{
        function.__name__: dsl.component(function, base_image=image, install_kfp_package=False)
        for function in STEP_FUNCTIONS})
