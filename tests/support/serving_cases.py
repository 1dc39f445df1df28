"""A SavedModel and the request and answers it must give, for tests/support/tf_serving.py.

    python -m tests.support.serving_cases OUT_DIR                 # a small model made here
    python -m tests.support.serving_cases OUT_DIR --model MODEL   # a pushed model (local): a
                                                                  # registry or a version

writes OUT_DIR/saved_model/1 (the export under test) and OUT_DIR/cases.json: the request body
for one image of every kind the split accepts, and what the Keras model answers for it.
"""

import argparse
import json
import os
import shutil

import numpy as np
import tensorflow as tf

from admod import datasets, registry, results, serving, serving_request
from admod import model as model_lib
from admod.calibration import Calibration
from admod.defaults import CLASS_NAMES
from admod.options import DEFAULTS
from admod.results import ModelInfo
from tests.support import tf_serving
from tests.support.image_kinds import kinds

TOLERANCE = 1e-5  # in probability


def keras_probabilities(model, image_size: int, max_pixels: int, raw: list[bytes]) -> np.ndarray:
    """The Keras model's probability for each encoded image, decoded as training decodes."""
    batch = tf.stack([datasets.decode_and_resize(tf.constant(data), image_size, max_pixels)
                      for data in raw])
    return model(tf.cast(batch, tf.float32), training=False).numpy().ravel()


def spread_outputs(model, image_size: int, raw: list[bytes]) -> None:
    """Rescales the output layer so the probabilities on `raw` spread over about 0.1-0.9, half
    of them above 0.5: a random-weights model scores every image near one value, which no
    comparison could tell apart."""
    p = np.clip(keras_probabilities(model, image_size, DEFAULTS.max_image_pixels, raw).astype(
        np.float64), 1e-12, 1 - 1e-12)
    logits = np.log(p / (1 - p))
    scale = 1.5 / max(logits.std(), 1e-9)
    layer = model.get_layer("not_allowed")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel * scale, (bias - np.median(logits)) * scale])


def small_model(image_size: int = 32, seed: int = 3):
    """A random-weights model whose scores differ from image to image, and a threshold in the
    widest gap between them above 0.5: both labels are served, some images score between 0.5
    and the threshold (so a label at 0.5 would differ), none close to it."""
    import keras

    keras.utils.set_random_seed(seed)
    model, _ = model_lib.build_model(image_size, weights="none")
    raw = list(kinds().values())
    spread_outputs(model, image_size, raw)
    p = np.unique(keras_probabilities(model, image_size, DEFAULTS.max_image_pixels, raw))
    above = p[p >= 0.5]
    gaps = np.diff(above)
    if not len(gaps):
        raise AssertionError(f"the spread model scores too few images above 0.5: {p}")
    widest = int(np.argmax(gaps))
    return model, float((above[widest] + above[widest + 1]) / 2)


# The export under test is calibrated, so that the loaders run the calibration's ops too: a map
# that moves every probability (none is left where it was), increasing.
CALIBRATION = Calibration("platt", 0.8, 0.3)


def write_cases(out_dir: str, model, image_size: int, raw_threshold: float, max_pixels: int,
                calibration: Calibration) -> dict:
    """The request for every image kind, and the answers: the Keras model's probability
    calibrated, the label by the raw probability at `raw_threshold`."""
    images = kinds()
    raw = keras_probabilities(model, image_size, max_pixels, list(images.values()))
    cases = {"request": serving_request.body(list(images.values())),
             "expected": {"kinds": list(images),
                          "raw_probability": [float(p) for p in raw],
                          "probability": [float(p) for p in calibration.apply(raw)],
                          "label": [CLASS_NAMES[int(p >= raw_threshold)] for p in raw]},
             "raw_threshold": raw_threshold,
             "threshold": float(calibration.apply([raw_threshold])[0]),
             "calibration": calibration.facts(), "tolerance": TOLERANCE}
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, tf_serving.CASES_FILE), "w") as f:
        json.dump(cases, f)
    return cases


def export_with_cases(out_dir: str, model, raw_threshold: float, image_size: int = 32,
                      calibration: Calibration = CALIBRATION) -> dict:
    serving.export(model, image_size, raw_threshold,
                   os.path.join(out_dir, tf_serving.SAVED_MODEL), calibration=calibration)
    return write_cases(out_dir, model, image_size, raw_threshold, DEFAULTS.max_image_pixels,
                       calibration)


def from_version(out_dir: str, version: str) -> dict:
    info = results.read(ModelInfo, os.path.join(version, registry.MODEL_INFO_FILE))
    shutil.copytree(registry.serving_model_dir(version),
                    os.path.join(out_dir, tf_serving.SAVED_MODEL))
    model = model_lib.load(os.path.join(version, registry.MODEL_FILE))
    return write_cases(out_dir, model, info.image_size, info.calibration.raw_threshold,
                       info.max_image_pixels, Calibration.of(info.calibration))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--model", help="a local registry (its champion) or version folder")
    args = parser.parse_args()
    if os.path.exists(args.out_dir) and os.listdir(args.out_dir):
        parser.error(f"{args.out_dir} is not empty: pass a new folder")
    if args.model:
        from_version(args.out_dir, registry.resolve_version(args.model))
    else:
        export_with_cases(args.out_dir, *small_model())
    print(f"wrote {args.out_dir}")


if __name__ == "__main__":
    main()
