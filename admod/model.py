"""The classifier: ResNet50 base + the method's head, with preprocessing inside the model.

Input: RGB images, float 0..255. `ResNetPreprocess` (= resnet50.preprocess_input, caffe mode)
is the first layer, so whoever loads the model cannot preprocess differently from training.
"""

import dataclasses
import logging
import os
import tempfile

import keras

from admod import defaults, reachable, registry, storage
from admod.errors import AdmodError
from admod.options import DEFAULTS
from admod.results import ModelInfo

log = logging.getLogger(__name__)
BASE_NAME = "resnet50"
# The trainer image bakes the ImageNet no-top file here and names it in this variable, so a
# step under any user id finds it without Keras's cache folder (which it skips when that is
# not writable). A `<file>.source` beside it says what the file is.
BAKED_IMAGENET_WEIGHTS = "ADMOD_IMAGENET_WEIGHTS"
PREPROCESSING = ("keras.applications.resnet50.preprocess_input (caffe: RGB->BGR, ImageNet mean "
                 "subtracted, no scaling)")


@keras.saving.register_keras_serializable(package="admod")
class ResNetPreprocess(keras.layers.Layer):
    """keras.applications.resnet50.preprocess_input as a layer."""

    def call(self, images):
        return keras.applications.resnet50.preprocess_input(images)


def _resnet50(weights: str | None, shape: tuple) -> keras.Model:
    return keras.applications.ResNet50(include_top=False, weights=weights, input_shape=shape)


def load_base(image_size: int, weights: str,
              allow_random_init: bool = False) -> tuple[keras.Model, str]:
    """ResNet50 without top, and where its weights came from. When ImageNet's weights cannot
    be had, that is an error, unless `allow_random_init` (the local profile) accepts random
    initialisation instead, which is then logged and recorded as the weights' source."""
    shape = (image_size, image_size, 3)
    if weights in ("none", "", None):
        return _resnet50(None, shape), "random initialisation"
    if weights == "imagenet" and os.environ.get(BAKED_IMAGENET_WEIGHTS):
        return _baked_imagenet_base(shape, os.environ[BAKED_IMAGENET_WEIGHTS])
    if weights == "imagenet":
        try:
            return _resnet50("imagenet", shape), "imagenet"
        except Exception as error:  # no network and no cached file: keras raises several kinds
            reason = str(error).splitlines()[0][:200]
            if not allow_random_init:
                raise AdmodError(
                    f"The ImageNet weights could not be loaded ({reason}): run in the trainer "
                    "image, which bakes them, pass weights=<path or gs:// URI of a ResNet50 "
                    "no-top weights file>, or set allow_random_init=true to train from random "
                    "initialisation on purpose.") from None
            log.warning("ImageNet weights could not be had (%s): training ResNet50 from random "
                        "initialisation, as allow_random_init=true permits.", reason)
            return _resnet50(None, shape), "random initialisation (imagenet unavailable)"
    reachable.require_weights_file(weights)
    with tempfile.TemporaryDirectory() as tmp:
        local = storage.download_to_file(weights, os.path.join(tmp, os.path.basename(weights)))
        try:
            base = _resnet50(local, shape)
        except (ValueError, OSError) as error:
            raise AdmodError(
                f"Weights file '{weights}' does not fit ResNet50 without top ({error}): pass a "
                "no-top ResNet50 weights file (.h5 or .weights.h5).") from error
    return base, weights


def _baked_imagenet_base(shape: tuple, path: str) -> tuple[keras.Model, str]:
    if not os.path.isfile(path):
        raise AdmodError(f"{BAKED_IMAGENET_WEIGHTS} names '{path}', which does not exist: rebuild "
                         "the image (containers/trainer.Dockerfile) or unset the variable.")
    source = "imagenet"
    if os.path.isfile(path + ".source"):
        with open(path + ".source") as f:
            source = f.read().strip()
    base = _resnet50(path, shape)
    log.info("ResNet50 weights: %s (%s)", source, path)
    return base, source


def build_model(image_size: int, weights: str = DEFAULTS.weights,
                units=defaults.HEAD_UNITS, dropouts=defaults.HEAD_DROPOUTS,
                allow_random_init: bool = DEFAULTS.allow_random_init) -> tuple[keras.Model, str]:
    """The method's model with its base frozen, and the weights' source."""
    base, source = load_base(image_size, weights, allow_random_init)
    base.trainable = False
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = ResNetPreprocess(name="preprocess")(inputs)
    x = base(x, training=False)  # BatchNorm stays in inference mode, also when unfrozen
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    for i, (n, rate) in enumerate(zip(units, dropouts, strict=True), start=1):
        x = keras.layers.Dense(n, activation="relu", name=f"dense_{i}")(x)
        x = keras.layers.BatchNormalization(name=f"head_bn_{i}")(x)
        x = keras.layers.Dropout(rate, name=f"dropout_{i}")(x)
    # float32 output, also under a mixed-precision policy
    outputs = keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="not_allowed")(x)
    return keras.Model(inputs, outputs, name="admod_resnet50"), source


def residual_blocks(base: keras.Model) -> list[str]:
    """The base's residual block names in order: conv2_block1 ... conv5_block3."""
    blocks = []
    for layer in base.layers:
        parts = layer.name.split("_")
        if len(parts) > 2 and parts[1].startswith("block"):
            name = f"{parts[0]}_{parts[1]}"
            if name not in blocks:
                blocks.append(name)
    return blocks


def unfreeze(model: keras.Model, first_block: str = DEFAULTS.unfreeze) -> int:
    """Unfreezes the whole base ('all') or every residual block from `first_block` on.

    BatchNormalization layers stay frozen: in Keras 3 a frozen BatchNormalization layer runs
    in inference mode, so its moving statistics never move (the `training=False` call alone
    does not guarantee that once the base is trainable). Returns the number of trainable base
    weights. The caller must compile again.
    """
    base = model.get_layer(BASE_NAME)
    base.trainable = True
    blocks = residual_blocks(base)
    if first_block != "all" and first_block not in blocks:
        raise AdmodError(f"unfreeze='{first_block}' names no residual block of ResNet50: use "
                         f"'all' or one of {', '.join(blocks)}.")
    unfrozen = None if first_block == "all" else set(blocks[blocks.index(first_block):])
    for layer in base.layers:
        in_scope = unfrozen is None or "_".join(layer.name.split("_")[:2]) in unfrozen
        layer.trainable = in_scope and not isinstance(layer, keras.layers.BatchNormalization)
    return len(base.trainable_weights)


def weights_digest(model: keras.Model) -> str:
    """sha256 over every weight's name and values: the same for every save and load of one
    trained model, unlike the bytes of its exports."""
    import hashlib

    import numpy as np

    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(weight.path.encode())
        digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
    return digest.hexdigest()


def load(path: str) -> keras.Model:
    return keras.models.load_model(path)


@dataclasses.dataclass
class Champion:
    version: str
    model: keras.Model
    info: ModelInfo  # its model_info.json


def load_champion(registry_root: str) -> Champion | None:
    """The current champion's model and model info, None before the first push."""
    with tempfile.TemporaryDirectory() as tmp:
        found = registry.champion_files(registry_root, tmp)
        if found is None:
            return None
        version, info, path = found
        return Champion(version, load(path), info)
