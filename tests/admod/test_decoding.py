"""The one decode path (admod.decoding): the pixels Pillow's normalisation gives, kind by kind,
and a SavedModel on raw bytes that agrees with training on the same file."""

import io
import struct

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from admod import datasets, decoding, images, serving
from admod import model as model_lib
from tests.support import small_resnet
from tests.support.image_kinds import encode, kinds, rotated_jpeg

SIZE = 32


def _pillow(data):
    image = Image.open(io.BytesIO(data))
    image.load()
    return np.asarray(images.normalise(image))


@pytest.mark.parametrize("kind, data", kinds().items())
def test_decoding_gives_what_pillow_gives(kind, data):
    decoded = decoding.decode_rgb(tf.constant(data)).numpy()
    expected = _pillow(data)
    assert decoded.shape == expected.shape, kind
    assert np.abs(decoded.astype(int) - expected.astype(int)).max() <= 1, kind
    height, width = (int(v) for v in decoding.image_shape(tf.constant(data)))
    assert (height, width) == Image.open(io.BytesIO(data)).size[::-1]  # from the header alone


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_applied_as_pillow_does(orientation):
    data = rotated_jpeg(orientation)
    assert int(decoding.exif_orientation(tf.constant(data))) == orientation
    np.testing.assert_array_equal(decoding.decode_rgb(tf.constant(data)).numpy(), _pillow(data))


def test_a_jpeg_without_exif_reads_no_directory_entry():
    """Else its own bytes read as a count of up to 512 entries, each a loop turn (the cost is
    bench/input_pipeline.py's first epoch; here the count that drives it)."""
    def entries(data):
        return int(decoding._exif_directory(decoding._bytes(tf.constant(data)))[1])

    assert entries(kinds()["plain JPEG"]) == 0
    assert entries(rotated_jpeg(6)) == len(Image.open(io.BytesIO(rotated_jpeg(6))).getexif())


def _huge_png_header(width=20000, height=20000):
    """A small PNG whose header announces width x height pixels."""
    data = bytearray(encode(Image.new("L", (8, 8)), "PNG"))
    data[16:24] = struct.pack(">II", width, height)
    return bytes(data)


def test_an_oversized_image_is_refused_from_its_header():
    data = _huge_png_header()
    assert len(data) < 1000
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_image_pixels"):
        decoding.decode_rgb(tf.constant(data), max_pixels=50_000_000)


def _upstream(op) -> set:
    """Every op `op` waits for: its inputs' and its control inputs', transitively."""
    found, waiting = set(), [op]
    while waiting:
        current = waiting.pop()
        for parent in [t.op for t in current.inputs] + list(current.control_inputs):
            if parent not in found:
                found.add(parent)
                waiting.append(parent)
    return found


def test_no_decode_starts_before_the_pixel_check():
    """An image whose header announces too many pixels is never decoded, so never takes the
    memory it announces: the decode waits for the check. Running beside it, which of the two
    errors came first varied from run to run."""
    operations = decoding._decoder(1000).get_concrete_function().graph.get_operations()
    checks = {op for op in operations if op.name.endswith("Assert/AssertGuard")}
    decodes = [op for op in operations
               if op.type in ("If", "StatelessIf") and op.outputs[0].dtype == tf.uint8]
    assert len(checks) == 1 and decodes
    assert all(checks <= _upstream(op) for op in decodes)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(3)
    with small_resnet.in_place():  # the decode is the promise here, not the architecture
        model, _ = model_lib.build_model(SIZE, weights="none")
    path = str(tmp_path_factory.mktemp("saved") / "saved_model")
    serving.export(model, SIZE, 0.5, path, max_pixels=50_000_000)
    return model, serving.load(path)


def _log_odds(p):
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


@pytest.mark.parametrize("kind", ["transparent PNG", "GIF with transparency", "CMYK JPEG",
                                  "EXIF-rotated JPEG", "16-bit PNG", "plain JPEG"])
def test_saved_model_on_raw_bytes_agrees_with_training_on_the_stored_bytes(exported, kind):
    model, serve = exported
    raw = kinds()[kind]
    stored = images.check_image(raw, 1, 10**8).data  # what the split stores for this file
    trained_on = datasets.decode_and_resize(tf.constant(stored), SIZE)
    training = model(tf.cast(trained_on[None], tf.float32), training=False).numpy().ravel()
    served = serve(image_bytes=tf.constant([raw]))["probability"].numpy()
    assert abs(_log_odds(served) - _log_odds(training))[0] <= 0.05, kind


def test_the_saved_model_refuses_an_oversized_image(exported):
    _, serve = exported
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_image_pixels"):
        serve(image_bytes=tf.constant([_huge_png_header()]))
