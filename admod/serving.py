"""The exported TensorFlow SavedModel: encoded image bytes in, probability and label out.

Decoding, resizing and preprocessing happen inside the signature, through the same functions
training uses (datasets.decode_and_resize over admod.decoding, then the model's own
preprocessing layer). An image whose header announces more than `max_pixels` is refused
before it is decoded. `probability` is calibrated (admod.calibration) when the model was.

The SavedModel is written by Keras's `ExportArchive`, so that the graph's restore op fills the
very variables the signature reads. TF Serving's C++ loader restores through that graph, not
through Python's object graph: a Keras 3 model inside a `tf.Module` saved with
`tf.saved_model.save` loads there but fails every request (keras-team/keras#20095,
tensorflow/serving#2226).
"""


import keras
import tensorflow as tf

from admod import datasets
from admod.serving_request import INPUT
from admod.errors import AdmodError, brief
from admod.calibration import EPSILON, UNCALIBRATED, Calibration
from admod.defaults import CLASS_NAMES
from admod.options import DEFAULTS

SIGNATURE = "serving_default"


def _calibrated(probability, calibration: Calibration):
    """admod.calibration's map, in the graph (float64, as NumPy computes it)."""
    if calibration.method == "none":
        return probability
    p = tf.clip_by_value(tf.cast(probability, tf.float64), EPSILON, 1 - EPSILON)
    z = calibration.slope * (tf.math.log(p) - tf.math.log1p(-p)) + calibration.intercept
    return tf.cast(tf.sigmoid(z), tf.float32)


def _serving_function(model, image_size: int, raw_threshold: float, max_pixels: int,
                      calibration: Calibration):
    def serve(image_bytes):
        images = tf.map_fn(
            lambda data: datasets.decode_and_resize(data, image_size, max_pixels), image_bytes,
            fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.uint8))
        raw = tf.cast(model(tf.cast(images, tf.float32), training=False), tf.float32)
        raw = tf.reshape(raw, [-1])
        # The label from the raw score at the raw threshold: the same decision as the
        # calibrated score at the calibrated threshold (the map is increasing), and identical
        # to the uncalibrated model's however the map rounds.
        label = tf.where(raw >= raw_threshold, CLASS_NAMES[1], CLASS_NAMES[0])
        return {"probability": _calibrated(raw, calibration), "label": label}
    return serve


def export(model, image_size: int, raw_threshold: float, path: str,
           max_pixels: int = DEFAULTS.max_image_pixels,
           calibration: Calibration = UNCALIBRATED) -> None:
    """The SavedModel at `path`: `probability` calibrated by `calibration`, `label` by the raw
    score at `raw_threshold`."""
    # add_endpoint tracks exactly the variables the signature reads (no optimizer state);
    # archive.track(model) as well would store every weight twice.
    archive = keras.export.ExportArchive()
    archive.add_endpoint(SIGNATURE, _serving_function(model, image_size, raw_threshold,
                                                      max_pixels, calibration),
                         input_signature=[tf.TensorSpec([None], tf.string, name=INPUT)])
    archive.write_out(path, verbose=False)


def load(path: str, named: str | None = None):
    """The serving function: f(image_bytes=tf.constant([...])) -> {'probability', 'label'}.
    A SavedModel with files missing or damaged is one sentence naming `named` (default
    `path`), the folder the user knows."""
    try:
        return tf.saved_model.load(path).signatures[SIGNATURE]
    except (OSError, ValueError, KeyError, tf.errors.OpError) as error:
        raise AdmodError(f"The SavedModel '{named or path}' cannot be loaded ({brief(error, 160)})"
                         ": its files are missing or damaged; push the model again, or serve "
                         "another version (admod registry list, then set-champion).") from None
