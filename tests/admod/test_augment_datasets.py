import math

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from admod import augment, datasets, records
from admod.options import AugmentOptions

NONE = dict(rotation_degrees=0.0, width_shift=0.0, height_shift=0.0, shear_degrees=0.0, zoom=0.0,
            horizontal_flip=False)
N = 4000


def _transforms(**overrides):
    config = AugmentOptions(**{**NONE, **overrides})
    return augment.random_transforms(N, 64.0, 64.0, config, tf.constant([7, 11])).numpy()


def test_rotation_within_range():
    t = _transforms(rotation_degrees=30.0)
    angles = np.degrees(np.arctan2(t[:, 3], t[:, 0]))
    assert np.abs(angles).max() <= 30.0 + 1e-3 and np.abs(angles).max() > 28.0


def test_shifts_within_range():
    t = _transforms(width_shift=0.2, height_shift=0.1)
    assert np.abs(t[:, 2]).max() <= 0.2 * 64 + 1e-3 and np.abs(t[:, 2]).max() > 0.18 * 64
    assert np.abs(t[:, 5]).max() <= 0.1 * 64 + 1e-3 and np.abs(t[:, 5]).max() > 0.09 * 64


def test_zoom_within_range():
    t = _transforms(zoom=0.2)
    for scale in (t[:, 0], t[:, 4]):  # the whole range reached, never exceeded
        assert 0.8 - 1e-6 <= scale.min() < 0.82 and 1.18 < scale.max() <= 1.2 + 1e-6


def test_shear_is_in_degrees():
    t = _transforms(shear_degrees=10.0)
    shear = np.degrees(np.arctan(t[:, 1]))  # a01 = tan(shear) without rotation or zoom
    assert np.abs(shear).max() <= 10.0 + 1e-3 and np.abs(shear).max() > 9.0


def test_flip_rate_is_one_half():
    t = _transforms(horizontal_flip=True)
    flipped = (t[:, 0] < 0).mean()
    assert 0.45 < flipped < 0.55
    assert (_transforms()[:, 0] > 0).all()


def test_identity_config_changes_nothing():
    image = tf.random.uniform([2, 16, 16, 3], 0, 255)
    out = augment.augment_batch(image, AugmentOptions(**NONE), tf.constant([1, 2]))
    np.testing.assert_allclose(out.numpy(), image.numpy(), atol=1e-3)


@pytest.fixture
def one_image_shards(tmp_path):
    import io
    gradient = np.tile(np.arange(48, dtype=np.uint8)[None, :, None] * 5, (48, 1, 3))
    data = io.BytesIO()
    Image.fromarray(gradient).save(data, format="JPEG", quality=95)
    folder = str(tmp_path / "train")
    writer = records.ShardWriter(folder, shard_size=10)
    writer.write(records.encode(data.getvalue(), 1, "abc", "mem://x.jpg"))
    writer.close()
    records.write_info(folder, {"count": 1})
    return folder


def test_no_caching_after_augmentation(one_image_shards):
    ds = datasets.make_dataset(one_image_shards, 32, 1, training=True,
                               augment_config=AugmentOptions(), seed=1)
    epochs = [next(iter(ds))[0].numpy() for _ in range(3)]
    assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[1], epochs[2])


def _epochs(folder, seed, count=3):
    ds = datasets.make_dataset(folder, 32, 1, training=True,
                               augment_config=AugmentOptions(), seed=seed)
    return [next(iter(ds))[0].numpy() for _ in range(count)]


def test_each_epoch_draws_fresh_transforms_reproducibly_under_a_global_seed(one_image_shards):
    import keras

    keras.utils.set_random_seed(0)  # as the training steps do
    first = _epochs(one_image_shards, seed=augment.phase_seed(0, "head"))
    assert not np.array_equal(first[0], first[1]) and not np.array_equal(first[1], first[2])
    keras.utils.set_random_seed(0)
    again = _epochs(one_image_shards, seed=augment.phase_seed(0, "head"))
    # the same seed, the same draws
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    keras.utils.set_random_seed(0)
    fine_tune = _epochs(one_image_shards, seed=augment.phase_seed(0, "fine_tune"))
    # the phases differ
    assert not any(np.array_equal(a, b) for a, b in zip(first, fine_tune, strict=True))


def test_validation_is_deterministic_and_unaugmented(one_image_shards):
    ds = datasets.make_dataset(one_image_shards, 32, 1, training=False)
    first, second = (next(iter(ds))[0].numpy() for _ in range(2))
    assert np.array_equal(first, second)
    assert first.shape == (1, 32, 32, 3) and first.dtype == np.float32
    assert first[0, :, 0].std() < 2 and first[0, 0, -1, 0] > first[0, 0, 0, 0]  # not flipped


def test_labels_and_uris_follow_the_dataset_order(one_image_shards):
    labels, uris = datasets.labels_and_uris(one_image_shards)
    assert labels == [1] and uris == ["mem://x.jpg"]
    assert math.isclose(next(iter(datasets.make_dataset(one_image_shards, 8, 4, False)))[1][0], 1.0)
