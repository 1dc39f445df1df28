"""A stand-in for ResNet50 where a test's promise is not the architecture (the replicas, the
precision policy, the resumption): the same stem, the same layer names and kinds (residual
blocks conv2_block1 ... conv5_block3, a BatchNormalization after every convolution, the
shortcut convolution of each stage's first block), with one block per stage before conv5 and
a few filters, so that building, tracing and saving it take a fraction of ResNet50's time.

    admod.model._resnet50 = small_resnet.small_resnet   # in the process that trains
    with small_resnet.in_place(): ...                    # in a test's own process

or, for a pipeline run under kfp.local, `components_on_it` (train-head and fine-tune on it).
"""

import contextlib
import importlib.util
import inspect
import os
import textwrap
import types
from unittest import mock

import keras
from keras import layers
from kfp import dsl

from admod import components
from admod import model as model_lib

FILTERS = 8
STAGES = ((2, 1, 1), (3, 1, 2), (4, 1, 2), (5, 3, 2))  # stage, blocks, first block's stride


def small_resnet(weights, shape) -> keras.Model:
    if weights is not None:
        raise ValueError("the small ResNet has random weights only")
    inputs = keras.Input(shape)
    x = layers.Conv2D(FILTERS, 7, strides=2, padding="same", name="conv1_conv")(inputs)
    x = layers.BatchNormalization(name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1_pool")(x)
    for stage, blocks, stride in STAGES:
        for block in range(1, blocks + 1):
            x = _block(x, f"conv{stage}_block{block}", stride if block == 1 else 1,
                       shortcut=block == 1)
    return keras.Model(inputs, x, name="resnet50")


@contextlib.contextmanager
def in_place():
    """admod.model builds the small ResNet where it would build ResNet50, while inside."""
    with mock.patch.object(model_lib, "_resnet50", small_resnet):
        yield


def _block(x, name: str, stride: int, shortcut: bool):
    """ResNet50's bottleneck block (keras.applications' residual_block_v1), FILTERS wide."""
    if shortcut:
        short = layers.Conv2D(4 * FILTERS, 1, strides=stride, name=name + "_0_conv")(x)
        short = layers.BatchNormalization(name=name + "_0_bn")(short)
    else:
        short = x
    x = layers.Conv2D(FILTERS, 1, strides=stride, name=name + "_1_conv")(x)
    x = layers.BatchNormalization(name=name + "_1_bn")(x)
    x = layers.Activation("relu", name=name + "_1_relu")(x)
    x = layers.Conv2D(FILTERS, 3, padding="same", name=name + "_2_conv")(x)
    x = layers.BatchNormalization(name=name + "_2_bn")(x)
    x = layers.Activation("relu", name=name + "_2_relu")(x)
    x = layers.Conv2D(4 * FILTERS, 1, name=name + "_3_conv")(x)
    x = layers.BatchNormalization(name=name + "_3_bn")(x)
    x = layers.Add(name=name + "_add")([short, x])
    return layers.Activation("relu", name=name + "_out")(x)


def components_on_it(built: types.SimpleNamespace, image: str, folder: str):
    """`built` (admod.components.build(image)) with train-head and fine-tune on the small ResNet:
    each is its real component's source with the stand-in put in after its first line, so every
    output is the real step's. `folder` keeps the generated sources (KFP embeds a component's
    source, which it reads from its file)."""
    for function in (components.train_head, components.fine_tune):
        setattr(built, function.__name__, dsl.component(
            _on_small_resnet(function, folder), base_image=image, install_kfp_package=False))
    return built


def _on_small_resnet(function, folder: str):
    source = inspect.getsource(function)
    first_line_ends = source.index("\n", source.index("values = dict(locals())"))
    code = (source[:first_line_ends + 1] + textwrap.indent(_PUT_IN, "    ")
            + source[first_line_ends + 1:])
    path = os.path.join(folder, f"{function.__name__}_on_small_resnet.py")
    with open(path, "w") as f:
        f.write("from kfp.dsl import *  # noqa: F403\n\n" + code)
    spec = importlib.util.spec_from_file_location(function.__name__ + "_on_small_resnet", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, function.__name__)


_PUT_IN = f"""import sys
sys.path.insert(0, {os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))!r})
from tests.support import small_resnet
from admod import model as model_lib
model_lib._resnet50 = small_resnet.small_resnet
"""
