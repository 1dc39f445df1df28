"""Training augmentation: the method's ranges composed into one affine transform per image.

Rotation, shifts, shear, zoom and the horizontal flip become a single 3x3 matrix per image,
applied to a whole batch by one ImageProjectiveTransformV3 op (one resampling, not five).

The draws are stateless: each batch's transforms come from a seed of its own, which
tf.data.Dataset.random re-draws every epoch (see admod.datasets). So every epoch, and each
training phase (`phase_seed`), sees fresh transforms, and the same seed gives the same ones.

Shear is an angle in degrees. Keras 2's ImageDataGenerator(shear_range=0.2) also meant 0.2
degrees, so the default 0.2 reproduces the method exactly (a nearly invisible shear); set
shear_degrees=11.46 for a 0.2-radian shear.
"""

import math
import zlib

import tensorflow as tf

from admod.options import AugmentOptions


def phase_seed(seed: int, phase: str) -> int:
    """The seed of one training phase's input pipeline: the phases never repeat each other's
    shuffles and transforms, and each is reproducible from `seed`."""
    return zlib.crc32(f"{seed}/{phase}".encode())


def random_transforms(batch: int, height: int, width: int, config: AugmentOptions, seed):
    """[batch, 8] projective transforms mapping output pixels to input pixels, drawn from the
    stateless `seed` (an int tensor of shape [2])."""
    keys = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=7)

    def uniform(key, limit, low=None):
        low = -limit if low is None else low
        return tf.random.stateless_uniform([batch], keys[key], low, limit)

    angle = uniform(0, config.rotation_degrees * math.pi / 180)
    shear = uniform(1, config.shear_degrees * math.pi / 180)
    zoom_x = 1.0 + uniform(2, config.zoom)
    zoom_y = 1.0 + uniform(3, config.zoom)
    shift_x = uniform(4, config.width_shift) * width
    shift_y = uniform(5, config.height_shift) * height
    flip = tf.ones([batch])
    if config.horizontal_flip:
        flip = tf.where(uniform(6, 1.0, low=0.0) < 0.5, -1.0, 1.0)

    cos, sin = tf.cos(angle), tf.sin(angle)
    # A = rotation @ shear @ zoom @ flip, as Keras 2 composed them (output -> input).
    a00 = cos * zoom_x * flip
    a01 = (-sin + cos * tf.tan(shear)) * zoom_y
    a10 = sin * zoom_x * flip
    a11 = (cos + sin * tf.tan(shear)) * zoom_y
    # Rotate, shear and zoom about the image centre, then shift.
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    b0 = cx - a00 * cx - a01 * cy + shift_x
    b1 = cy - a10 * cx - a11 * cy + shift_y
    zeros = tf.zeros([batch])
    return tf.stack([a00, a01, b0, a10, a11, b1, zeros, zeros], axis=1)


def augment_batch(images, config: AugmentOptions, seed):
    """Randomly transforms a [batch, height, width, 3] float batch, one transform per image,
    drawn from the stateless `seed` (an int tensor of shape [2])."""
    shape = tf.shape(images)
    transforms = random_transforms(shape[0], tf.cast(shape[1], tf.float32),
                                   tf.cast(shape[2], tf.float32), config, seed)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=shape[1:3],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST")
