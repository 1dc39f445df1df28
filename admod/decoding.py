"""The one decode path from image bytes to RGB pixels, in TensorFlow ops only.

Training (admod.datasets) and the exported SavedModel's signature (admod.serving) both call
`decode_rgb`, on the same bytes the split stores, so serving cannot drift from training. It
gives what Pillow's normalisation in admod.images gives (the split's checks), and it is tested
against it image kind by image kind:

- JPEG: RGB (CMYK converted), EXIF orientation applied;
- PNG: 16-bit scaled to 8 bits, grayscale to RGB, alpha composited onto white;
- GIF: the first frame, transparent pixels white;
- BMP: RGB.

`image_shape` reads the size from the header without decoding, so an oversized image is
refused before it takes memory. WebP is not decodable by TensorFlow: the split stores WebP
images as PNG, and `admod predict` converts them the same way.
"""

import functools

import tensorflow as tf

JPEG, PNG, GIF, BMP = "jpeg", "png", "gif", "bmp"
_MAGIC = ((JPEG, b"\xff\xd8\xff"), (PNG, b"\x89PNG"), (GIF, b"GIF8"), (BMP, b"BM"))
_EXIF_ORIENTATION_TAG = 0x0112
_ONE_BYTE = [bytes([i]) for i in range(256)]  # a tensor only where used: importing starts no TF


def _is(data, kind: str):
    magic = dict(_MAGIC)[kind]
    return tf.equal(tf.strings.substr(data, 0, len(magic)), magic)


def _bytes(data):
    return tf.cast(tf.io.decode_raw(data, tf.uint8), tf.int32)


def _at(b, i):
    """b[i] (i a scalar or a vector of positions), 0 past the end: corrupt headers must not
    raise out-of-range errors."""
    n = tf.shape(b)[0]
    return tf.where(i < n, tf.gather(b, tf.clip_by_value(i, 0, n - 1)), 0)


def _uint(b, i, size: int, little):
    """The `size`-byte unsigned integer at b[i], in int32 (four bytes wrap as a signed int32
    does). One gather for all its bytes: the graph stays small, and so quick to trace."""
    weights = tf.constant([256 ** k for k in range(size)])
    return tf.reduce_sum(_at(b, i + tf.range(size))
                         * tf.where(little, weights, tf.reverse(weights, [0])))


def _u16(b, i, little):
    return _uint(b, i, 2, little)


def _u32(b, i, little):
    return _uint(b, i, 4, little)


# --- size from the header ------------------------------------------------------------------

def _jpeg_shape(data):
    shape = tf.image.extract_jpeg_shape(data)
    return tf.cast(shape[0], tf.int64), tf.cast(shape[1], tf.int64)


def _header_shape(data, height_at: int, width_at: int, little: bool, size: int):
    b = _bytes(tf.strings.substr(data, 0, 32))
    read = _u32 if size == 4 else _u16
    return (tf.abs(tf.cast(read(b, height_at, little), tf.int64)),
            tf.cast(read(b, width_at, little), tf.int64))


def image_shape(data):
    """(height, width) from the header of a JPEG, PNG, GIF or BMP; (0, 0) for anything else."""
    return tf.case([
        (_is(data, JPEG), lambda: _jpeg_shape(data)),
        (_is(data, PNG), lambda: _header_shape(data, 20, 16, False, 4)),
        (_is(data, GIF), lambda: _header_shape(data, 8, 6, True, 2)),
        (_is(data, BMP), lambda: _header_shape(data, 22, 18, True, 4)),
    ], default=lambda: (tf.constant(0, tf.int64), tf.constant(0, tf.int64)))


# --- JPEG: EXIF orientation ----------------------------------------------------------------

def _exif_tiff_start(b):
    """Where the TIFF header of a JPEG's EXIF (APP1) segment starts, or -1."""
    n = tf.shape(b)[0]
    exif = tf.constant([0x45, 0x78, 0x69, 0x66, 0, 0])  # "Exif\0\0"

    def keep_looking(pos, found):
        return (found < 0) & (pos + 4 < n) & tf.equal(_at(b, pos), 0xFF) & (
            _at(b, pos + 1) != 0xDA)  # stop at the image data (SOS)

    def next_segment(pos, found):
        is_exif = tf.equal(_at(b, pos + 1), 0xE1) & tf.reduce_all(
            tf.equal(_at(b, pos + 4 + tf.range(6)), exif))
        length = 256 * _at(b, pos + 2) + _at(b, pos + 3)
        return pos + 2 + length, tf.where(is_exif, pos + 10, found)

    _, found = tf.while_loop(keep_looking, next_segment, (tf.constant(2), tf.constant(-1)),
                             maximum_iterations=64)
    return found


def _exif_directory(b):
    """Where the first EXIF directory (IFD0) of JPEG bytes `b` starts, how many entries it
    has (0 without EXIF) and its byte order."""
    tiff = _exif_tiff_start(b)
    little = tf.equal(_at(b, tiff), 0x49)  # "II": little-endian, "MM": big-endian
    ifd = tiff + _u32(b, tiff + 4, little)
    # Without EXIF, the bytes read as a count would be the image's own: up to 512 idle loop
    # turns an image, which made decoding 18 times slower (bench/input_pipeline.py).
    count = tf.where(tiff >= 0, tf.minimum(_u16(b, ifd, little), 512), 0)
    return ifd, count, little


def exif_orientation(data):
    """The EXIF orientation (1-8) of JPEG bytes; 1 when there is none."""
    b = _bytes(tf.strings.substr(data, 0, 65536 + 4))  # APP segments are at most 64 KiB
    ifd, count, little = _exif_directory(b)

    def entry(i, orientation):
        at = ifd + 2 + 12 * i
        is_tag = tf.equal(_u16(b, at, little), _EXIF_ORIENTATION_TAG)
        return i + 1, tf.where(is_tag, _u16(b, at + 8, little), orientation)

    _, orientation = tf.while_loop(lambda i, o: i < count, entry, (tf.constant(0), tf.constant(1)))
    # Without EXIF no entry is read and the orientation stays 1.
    return tf.where((orientation >= 1) & (orientation <= 8), orientation, 1)


def apply_orientation(image, orientation):
    """Turns an [H, W, C] image upright as EXIF `orientation` says (as Pillow's exif_transpose):
    each of the eight is a transpose (5-8) followed by a left-right and a top-bottom flip."""
    transpose = orientation >= 5
    flip_left_right = tf.reduce_any(tf.equal(orientation, [2, 3, 6, 7]))
    flip_up_down = tf.reduce_any(tf.equal(orientation, [3, 4, 7, 8]))
    image = tf.cond(transpose, lambda: tf.transpose(image, [1, 0, 2]), lambda: image)
    image = tf.cond(flip_left_right, lambda: tf.reverse(image, [1]), lambda: image)
    return tf.cond(flip_up_down, lambda: tf.reverse(image, [0]), lambda: image)


def _decode_jpeg(data):
    image = tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE")
    return apply_orientation(image, exif_orientation(data))


# --- PNG and BMP: 16 bits, gray, alpha -----------------------------------------------------

def _on_white(image):
    """uint8 [H, W, 1-4] -> RGB: gray spread to three channels, alpha composited onto white."""
    channels = tf.shape(image)[-1]
    pixels = tf.cast(image, tf.float32)
    color = tf.cond(channels <= 2, lambda: tf.tile(pixels[..., :1], [1, 1, 3]),
                    lambda: pixels[..., :3])
    alpha = tf.cond(tf.equal(channels % 2, 0), lambda: pixels[..., -1:] / 255.0,
                    lambda: tf.ones_like(pixels[..., :1]))
    composited = color * alpha + 255.0 * (1.0 - alpha)
    return tf.cast(tf.round(composited), tf.uint8)


def _decode_png(data):
    wide = tf.io.decode_png(data, channels=0, dtype=tf.uint16)  # 8-bit values come as v * 257
    return _on_white(tf.cast(tf.bitwise.right_shift(wide, 8), tf.uint8))


def _decode_bmp(data):
    return tf.io.decode_bmp(data, channels=0)[..., :3]  # as Pillow: a BMP's fourth byte is no alpha


# --- GIF: first frame, transparency onto white ----------------------------------------------

def _gif_transparent_to_white(data):
    """The same GIF with its first frame's transparent colour made opaque white, so decoding
    gives transparent pixels white (decode_gif has no alpha)."""
    b = _bytes(tf.strings.substr(data, 0, 1 << 20))
    n = tf.shape(b)[0]

    def table_size(packed):
        return tf.where(packed >= 128, 3 * tf.bitwise.left_shift(2, packed % 8), 0)

    def before_image(pos, gce):
        return (pos < n) & tf.equal(_at(b, pos), 0x21)  # an extension, not yet the image (0x2C)

    def skip_extension(pos, gce):
        gce = tf.where(tf.equal(_at(b, pos + 1), 0xF9), pos, gce)  # Graphic Control Extension
        pos = pos + 2

        pos = tf.while_loop(lambda p: (p < n) & (_at(b, p) > 0), lambda p: [p + _at(b, p) + 1],
                            [pos], maximum_iterations=4096)[0]
        return pos + 1, gce

    start = 13 + table_size(_at(b, 10))
    image_at, gce = tf.while_loop(before_image, skip_extension, (start, tf.constant(-1)),
                                  maximum_iterations=256)
    transparent = (gce >= 0) & tf.equal(_at(b, gce + 3) % 2, 1)
    local = _at(b, image_at + 9) >= 128
    table = tf.where(local, image_at + 10, 13)
    entry = table + 3 * _at(b, gce + 6)

    def patched():
        # the transparency flag off
        cleared = tf.gather(tf.constant(_ONE_BYTE), _at(b, gce + 3) - 1)
        return _replace(_replace(data, gce + 3, cleared), entry, b"\xff\xff\xff")

    return tf.cond(transparent & (entry + 3 <= n), patched, lambda: data)


def _replace(data, at, new):
    """`data` with the bytes at `at` replaced by as many bytes of `new`."""
    length = tf.strings.length(new)
    return tf.strings.join([tf.strings.substr(data, 0, at), new,
                            tf.strings.substr(data, at + length, -1)])


def _decode_gif(data):
    return tf.io.decode_gif(_gif_transparent_to_white(data))[0]


# --- the one entry point -------------------------------------------------------------------

def decode_rgb(data, max_pixels=None):
    """uint8 [H, W, 3] RGB from JPEG, PNG, GIF or BMP bytes (a scalar string). With
    `max_pixels`, an image whose header announces more pixels is refused (InvalidArgumentError)
    before it is decoded."""
    return _decoder(max_pixels)(data)


@functools.lru_cache(maxsize=None)
def _decoder(max_pixels):
    # One graph function per process and max_pixels: each dataset, export and step calls it
    # instead of tracing the decode again (0.4 s each time).
    return tf.function(functools.partial(_decode_rgb, max_pixels=max_pixels), autograph=False,
                       input_signature=[tf.TensorSpec([], tf.string)])


def _decode_rgb(data, max_pixels):
    if max_pixels is not None:
        height, width = image_shape(data)
        pixels = height * width
        checked = tf.debugging.assert_less_equal(
            pixels, tf.constant(max_pixels, tf.int64),
            message=f"the image has more pixels than max_image_pixels ({max_pixels})")
        with tf.control_dependencies([checked]):  # no decode starts before the check passed
            data = tf.identity(data)
    image = tf.case([
        (_is(data, JPEG), lambda: _decode_jpeg(data)),
        (_is(data, PNG), lambda: _decode_png(data)),
        (_is(data, GIF), lambda: _decode_gif(data)),
        (_is(data, BMP), lambda: _decode_bmp(data)),
    ], default=lambda: tf.io.decode_image(data, channels=3, expand_animations=False))
    return tf.ensure_shape(image, [None, None, 3])
