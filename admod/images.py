"""Checking one image file with Pillow, and the bytes the split stores for it.

Every image is decoded fully before it can be used; a file that cannot be used gets one of the
EXCLUSION reasons below instead, and is never modified. A usable image is stored as its own
bytes whenever admod.decoding (the one decode path of training and serving) gives exactly what
Pillow's normalisation here gives: JPEG, PNG and GIF without an EXIF orientation. Anything
else (WebP, BMP, a rotated PNG) is stored as a lossless PNG of the normalised RGB. So training
sees what serving sees for the same file, and no second lossy encoding. A BMP, which
admod.decoding also reads, is stored as PNG all the same: its bytes are its pixels, and on this
project's VM writing them (twice: check, then merge) cost more than compressing them
(bench/split.py, docs/benchmarks.md).
"""

import dataclasses
import hashlib
import io
import os
import struct

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from zlib_ng import zlib_ng

from admod import near_copies

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp"})
FORMATS = frozenset({"JPEG", "PNG", "GIF", "BMP", "WEBP"})

# Exclusion reasons, as they appear in the manifest and the split report.
NOT_IMAGE_EXTENSION = "not_image_extension"
EMPTY = "empty_file"
NOT_AN_IMAGE = "not_an_image"
CORRUPT = "corrupt_or_truncated"
TOO_SMALL = "too_small"
TOO_MANY_PIXELS = "too_many_pixels"
UNREADABLE = "unreadable_file"  # a dangling symlink, a symlink loop, no permission
NOT_A_FILE = "not_a_regular_file"  # a named pipe, socket, device or folder: never opened
UNSUPPORTED_FORMAT = "unsupported_image_format"  # an image, of a kind admod does not take
BAD_FILE_NAME = "file_name_not_utf8"
DUPLICATE = "duplicate"
LABEL_CONFLICT = "label_conflict"

EXIF_ORIENTATION = 0x0112
PNG_COMPRESS_LEVEL = 2  # zlib-ng's: about zlib level 1's size, about 3 times its speed
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# We check the pixel count from the header ourselves, before decoding.
Image.MAX_IMAGE_PIXELS = None


@dataclasses.dataclass
class CheckedImage:
    sha256: str
    width: int = 0
    height: int = 0
    format: str = ""
    reason: str = ""  # empty when the image is usable
    data: bytes = b""  # the bytes to store for training, when usable
    near_copy_sample: bytes = b""  # grey_sample, for admod.near_copies' key, when usable


def printable(uri: str) -> str:
    """`uri` as text that can be written anywhere: bytes of a file name that are not UTF-8
    shown as U+FFFD."""
    return uri.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def has_image_extension(uri: str) -> bool:
    return os.path.splitext(uri)[1].lower() in IMAGE_EXTENSIONS


def check_image(data: bytes, min_side: int, max_pixels: int) -> CheckedImage:
    """Decodes `data` fully and returns the bytes to store, or the reason it cannot be used."""
    checked = CheckedImage(sha256=hashlib.sha256(data).hexdigest())
    if not data:
        checked.reason = EMPTY
        return checked
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        checked.reason = NOT_AN_IMAGE
        return checked
    except OSError:
        checked.reason = CORRUPT
        return checked
    checked.format = image.format or ""
    checked.width, checked.height = image.size
    if checked.format not in FORMATS:
        checked.reason = UNSUPPORTED_FORMAT  # TIFF, AVIF, ICO...: Pillow knows it, admod not
    elif checked.width * checked.height > max_pixels:
        checked.reason = TOO_MANY_PIXELS  # from the header: nothing decoded
    elif min(checked.width, checked.height) < min_side:
        checked.reason = TOO_SMALL
    else:
        try:
            image.seek(0)  # GIF: first frame
            as_is = _stored_as_it_is(image)  # before load(), which drops what the header said
            image.load()
            checked.data = data if as_is else _stored_bytes(image)
            checked.near_copy_sample = grey_sample(image, near_copies.SAMPLE_SIDE)
        except (OSError, ValueError, SyntaxError, EOFError):
            checked.reason = CORRUPT
    return checked


def _stored_as_it_is(image: Image.Image) -> bool:
    """Whether the file's own bytes are stored: JPEG, and PNG and GIF without an EXIF
    orientation, which admod.decoding reads exactly as Pillow's normalisation does."""
    if image.format == "JPEG":
        return True
    if image.format in ("PNG", "GIF"):
        return image.getexif().get(EXIF_ORIENTATION, 1) == 1
    return False


def _stored_bytes(image: Image.Image) -> bytes:
    """The normalised RGB of a loaded image as a lossless PNG."""
    return rgb_png(np.asarray(normalise(image)))


# EXIF orientation -> the transpose that makes the image upright (as ImageOps.exif_transpose).
UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
           4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
           6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
           8: Image.Transpose.ROTATE_90}


def grey_sample(image: Image.Image, side: int) -> bytes:
    """A side x side nearest-neighbour sample of a loaded image, normalised as `normalise`
    does (upright, RGB), in grey (8 bits a pixel, row by row): a few thousand pixels read, not
    the whole image, so that the check's near-copy key costs little next to its decode."""
    sample = image.resize((side, side), Image.Resampling.NEAREST)
    turn = UPRIGHT.get(image.getexif().get(EXIF_ORIENTATION, 1))
    return to_rgb(sample.transpose(turn) if turn is not None else sample).convert("L").tobytes()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    checksum = zlib_ng.crc32(data, zlib_ng.crc32(kind))
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", checksum)


def rgb_png(pixels: np.ndarray) -> bytes:
    """uint8 [H, W, 3] as an 8-bit RGB PNG: every row unfiltered, compressed by zlib-ng.

    Written once, decoded every epoch, so speed over size: Pillow's PNG encoder always picks a
    filter per row, which with its zlib took the check longer than reading, hashing and
    decoding the image (bench/split.py); unfiltered rows at zlib's level 1 took half the time
    for about 10% more bytes, and zlib-ng's level 2 a third of that for 3% more (300 WebP ads
    of the current mix: 0.30 s, 3.9 MiB; 0.11 s, 4.0 MiB)."""
    height, width, _ = pixels.shape
    rows = np.zeros((height, width * 3 + 1), np.uint8)  # each row: filter type 0, then pixels
    rows[:, 1:] = pixels.reshape(height, width * 3)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return (PNG_SIGNATURE + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib_ng.compress(rows, PNG_COMPRESS_LEVEL))
            + _png_chunk(b"IEND", b""))


def normalise(image: Image.Image) -> Image.Image:
    """Upright RGB: EXIF orientation applied (no copy when there is none), then `to_rgb`."""
    if image.getexif().get(EXIF_ORIENTATION, 1) != 1:
        image = ImageOps.exif_transpose(image)
    return to_rgb(image)


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB from any mode: 16-bit scaled to 8, alpha composited onto white, palette, CMYK."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.uint32)
        image = Image.fromarray((array >> 8).clip(0, 255).astype(np.uint8), mode="L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        image = image.convert("RGBA")
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image)
    return image if image.mode == "RGB" else image.convert("RGB")
