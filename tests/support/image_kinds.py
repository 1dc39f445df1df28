"""One small image of every kind the split accepts, encoded the way real ads come: shared by
the decoding tests and the serving-runtime checks."""

import io

import numpy as np
from PIL import Image


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


def picture(width=60, height=40, seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    pixels = (rng.random((height, width, 3)) * 255).astype(np.uint8)
    pixels[:, : width // 2] = [200, 30, 30]  # a flat half and a noisy half
    return Image.fromarray(pixels)


def rotated_jpeg(orientation: int) -> bytes:
    image = picture()
    exif = image.getexif()
    exif[0x0112] = orientation
    return encode(image, "JPEG", quality=92, exif=exif.tobytes())


def kinds() -> dict[str, bytes]:
    image = picture()
    alpha = np.tile(np.linspace(0, 255, 60, dtype=np.uint8), (40, 1))
    palette = image.convert("P", palette=Image.ADAPTIVE, colors=64)
    return {
        "plain JPEG": encode(image, "JPEG", quality=92),
        "transparent PNG": encode(
            Image.fromarray(np.dstack([np.asarray(image), alpha]), "RGBA"), "PNG"),
        "GIF with transparency": encode(palette, "GIF", transparency=3),
        "CMYK JPEG": encode(image.convert("CMYK"), "JPEG", quality=92),
        "EXIF-rotated JPEG": rotated_jpeg(6),
        "16-bit PNG": encode(Image.fromarray(
            np.tile(np.linspace(0, 65535, 60), (40, 1)).astype(np.uint16)), "PNG"),
        "palette PNG with transparency": encode(palette, "PNG", transparency=3),
        "grey PNG with alpha": encode(image.convert("LA"), "PNG"),
        "grey PNG": encode(image.convert("L"), "PNG"),
        "BMP": encode(image, "BMP"),
    }
