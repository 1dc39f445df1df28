"""Training augmentation: the method's ranges composed into one affine transform per image.

Rotation, shifts, shear, zoom and the horizontal flip become a single 3x3 matrix per image,
applied to a whole batch by one ImageProjectiveTransformV3 op (one resampling, not five).

Shear is an angle in degrees. Keras 2's ImageDataGenerator(shear_range=0.2) also meant 0.2
degrees, so the default 0.2 reproduces the method exactly (a nearly invisible shear); set
shear_degrees=11.46 for a 0.2-radian shear.
"""

import dataclasses
import math

import tensorflow as tf

from admod import defaults


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    rotation_degrees: float = defaults.ROTATION_DEGREES
    width_shift: float = defaults.WIDTH_SHIFT
    height_shift: float = defaults.HEIGHT_SHIFT
    shear_degrees: float = defaults.SHEAR_DEGREES
    zoom: float = defaults.ZOOM
    horizontal_flip: bool = defaults.HORIZONTAL_FLIP


def random_transforms(batch: int, height: int, width: int, config: AugmentConfig, seed=None):
    """[batch, 8] projective transforms mapping output pixels to input pixels."""
    def uniform(limit):
        return tf.random.uniform([batch], -limit, limit, seed=seed)

    angle = uniform(config.rotation_degrees * math.pi / 180)
    shear = uniform(config.shear_degrees * math.pi / 180)
    zoom_x = 1.0 + uniform(config.zoom)
    zoom_y = 1.0 + uniform(config.zoom)
    shift_x = uniform(config.width_shift) * width
    shift_y = uniform(config.height_shift) * height
    flip = tf.ones([batch])
    if config.horizontal_flip:
        flip = tf.where(tf.random.uniform([batch], seed=seed) < 0.5, -1.0, 1.0)

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


def augment_batch(images, config: AugmentConfig, seed=None):
    """Randomly transforms a [batch, height, width, 3] float batch, one transform per image."""
    shape = tf.shape(images)
    transforms = random_transforms(shape[0], tf.cast(shape[1], tf.float32),
                                   tf.cast(shape[2], tf.float32), config, seed)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=shape[1:3],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST")
