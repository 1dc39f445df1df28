"""The pipeline's steps as KFP components: thin wrappers over admod.steps."""

from admod.components.evaluate import evaluate
from admod.components.fine_tune import fine_tune
from admod.components.push import push
from admod.components.split import split
from admod.components.train_head import train_head

__all__ = ["split", "train_head", "fine_tune", "evaluate", "push"]
