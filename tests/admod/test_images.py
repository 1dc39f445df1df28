import io

import numpy as np
import pytest
from PIL import Image

import tensorflow as tf

from admod import decoding, images

MIN_SIDE, MAX_PIXELS = 32, 10_000


def _encode(image, fmt, **kwargs):
    out = io.BytesIO()
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


def _decode(checked):
    """The stored bytes as training and serving see them (admod.decoding)."""
    return Image.fromarray(decoding.decode_rgb(tf.constant(checked.data)).numpy())


def _check(data):
    return images.check_image(data, MIN_SIDE, MAX_PIXELS)


@pytest.mark.parametrize("fmt, stored_as", [("JPEG", "JPEG"), ("PNG", "PNG"), ("GIF", "GIF"),
                                             ("BMP", "PNG"), ("WEBP", "PNG")])
def test_accepted_formats_are_stored_as_the_decoder_reads_them(fmt, stored_as):
    data = _encode(Image.new("RGB", (40, 50), (200, 10, 10)), fmt)
    checked = _check(data)
    assert checked.reason == "" and checked.format == fmt
    assert (checked.width, checked.height) == (40, 50)
    assert Image.open(io.BytesIO(checked.data)).format == stored_as
    assert (checked.data == data) == (fmt == stored_as)  # never a second lossy encoding
    decoded = _decode(checked)
    assert decoded.mode == "RGB" and decoded.size == (40, 50)


@pytest.mark.parametrize("mode", ["RGB", "P", "L", "RGBA", "1"])
def test_every_bmp_is_stored_as_a_png_of_pillows_pixels(mode):
    """24-bit, palette, grey, 32-bit and 1-bit BMPs alike: a lossless PNG (an uncompressed
    BMP's bytes are its pixels: stored as they are, they were most of the shards' bytes), which
    training decodes to Pillow's normalised pixels."""
    rng = np.random.default_rng(0)
    picture = Image.fromarray(rng.integers(0, 256, (45, 61, 3), dtype=np.uint8)).convert(mode)
    data = _encode(picture, "BMP")
    checked = _check(data)
    assert checked.reason == "" and checked.data.startswith(images.PNG_SIGNATURE)
    expected = images.normalise(Image.open(io.BytesIO(data)))
    assert np.array_equal(np.asarray(_decode(checked)), np.asarray(expected))


@pytest.mark.parametrize("mode", ["CMYK", "L", "P", "I;16"])
def test_modes_normalised_to_rgb(mode):
    source = Image.new("RGB", (40, 40), (255, 255, 255)).convert(mode) if mode != "I;16" else \
        Image.fromarray(np.full((40, 40), 65535, dtype=np.uint16))
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    pixel = _decode(_check(_encode(source, fmt))).getpixel((20, 20))
    assert all(channel > 240 for channel in pixel)  # white stays white, 16-bit scaled to 8


def test_alpha_composited_onto_white():
    transparent = Image.new("RGBA", (40, 40), (255, 0, 0, 0))
    pixel = _decode(_check(_encode(transparent, "PNG"))).getpixel((20, 20))
    assert all(channel > 240 for channel in pixel)


def test_exif_orientation_applied():
    image = Image.new("RGB", (60, 40), "green")
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    checked = _check(_encode(image, "JPEG", exif=exif))
    assert _decode(checked).size == (40, 60)


def test_gif_first_frame():
    frames = [Image.new("RGB", (40, 40), c) for c in ("red", "blue")]
    data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    red, green, blue = _decode(_check(data)).getpixel((20, 20))
    assert red > 200 and blue < 60


@pytest.mark.parametrize("data, reason", [
    (b"", images.EMPTY),
    (b"plain text, not an image", images.NOT_AN_IMAGE),
    (b"%PDF-1.4 a document", images.NOT_AN_IMAGE),
])
def test_unusable_bytes(data, reason):
    assert _check(data).reason == reason


def test_truncated_image_is_corrupt():
    data = _encode(Image.effect_noise((64, 64), 50).convert("RGB"), "JPEG")
    assert _check(data[: len(data) // 2]).reason == images.CORRUPT


def test_too_small():
    assert _check(_encode(Image.new("RGB", (31, 200)), "PNG")).reason == images.TOO_SMALL


def test_too_many_pixels_from_header_without_decoding(monkeypatch):
    def no_decoding(self):
        raise AssertionError("decoded a decompression bomb")

    data = _encode(Image.new("L", (200, 200)), "PNG")
    monkeypatch.setattr(Image.Image, "load", no_decoding)
    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", no_decoding)
    checked = _check(data)
    assert checked.reason == images.TOO_MANY_PIXELS and checked.width == 200


def test_extension_filter():
    assert images.has_image_extension("gs://b/a/x.JPEG")
    assert not images.has_image_extension("/a/notes.txt")


def _mid_grey_16_bit():
    return Image.fromarray(np.full((40, 40), 0x8080, dtype=np.uint16))  # 32896 of 65535


def _palette_with_transparency():
    """Left half palette entry 0 (red, transparent), right half entry 1 (blue, opaque)."""
    image = Image.new("P", (40, 40), 0)
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.paste(1, (20, 0, 40, 40))
    return image


def test_16_bit_gray_is_scaled_to_8_bits_not_clipped():
    stored = _check(_encode(_mid_grey_16_bit(), "PNG"))
    assert images.to_rgb(_mid_grey_16_bit()).getpixel((20, 20)) == (128, 128, 128)  # Pillow
    assert _decode(stored).getpixel((20, 20)) == (128, 128, 128)  # training and serving


def test_transparent_palette_entries_become_white_and_opaque_ones_keep_their_colour():
    source = _palette_with_transparency()
    stored = _check(_encode(source, "PNG", transparency=0))
    pillow = images.to_rgb(Image.open(io.BytesIO(_encode(source, "PNG", transparency=0))))
    for decoded in (pillow, _decode(stored)):
        assert decoded.getpixel((5, 20)) == (255, 255, 255)
        assert decoded.getpixel((30, 20)) == (0, 0, 255)


@pytest.mark.parametrize("height, width", [(1, 1), (45, 61), (300, 7)])
def test_the_split_png_is_read_back_exactly_by_pillow_and_tensorflow(height, width):
    pixels = np.random.default_rng(height).integers(0, 256, (height, width, 3), dtype=np.uint8)
    data = images.rgb_png(pixels)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), pixels)
    assert np.array_equal(decoding.decode_rgb(tf.constant(data)).numpy(), pixels)
