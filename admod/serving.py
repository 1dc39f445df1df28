"""The exported TensorFlow SavedModel: encoded image bytes in, probability and label out.

Decoding, resizing and preprocessing happen inside the signature, through the same functions
training uses (datasets.decode_and_resize over admod.decoding, then the model's own
preprocessing layer). An image whose header announces more than `max_pixels` is refused
before it is decoded.
"""

import tensorflow as tf

from admod import datasets, defaults
from admod.defaults import CLASS_NAMES

SIGNATURE = "serving_default"


class _Serving(tf.Module):
    def __init__(self, model, image_size: int, threshold: float, max_pixels: int):
        super().__init__()
        self.model = model
        self.image_size = image_size
        self.max_pixels = max_pixels
        self.threshold = tf.constant(threshold, tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serve(self, image_bytes):
        size = self.image_size
        images = tf.map_fn(lambda data: datasets.decode_and_resize(data, size, self.max_pixels),
                           image_bytes,
                           fn_output_signature=tf.TensorSpec([size, size, 3], tf.uint8))
        probability = tf.cast(self.model(tf.cast(images, tf.float32), training=False), tf.float32)
        probability = tf.reshape(probability, [-1])
        label = tf.where(probability >= self.threshold, CLASS_NAMES[1], CLASS_NAMES[0])
        return {"probability": probability, "label": label}


def export(model, image_size: int, threshold: float, path: str,
           max_pixels: int = defaults.MAX_IMAGE_PIXELS) -> None:
    module = _Serving(model, image_size, threshold, max_pixels)
    tf.saved_model.save(module, path, signatures={SIGNATURE: module.serve})


def load(path: str):
    """The serving function: f(image_bytes=tf.constant([...])) -> {'probability', 'label'}."""
    return tf.saved_model.load(path).signatures[SIGNATURE]
