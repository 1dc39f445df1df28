"""A synthetic ad data set in the pipeline's layout, deterministic for a given seed.

Ads are coloured backgrounds with text bars and product shapes, as banners, squares and
portraits, saved as JPEG or PNG. "Not allowed" ads also show a prohibited-product symbol (a
cigarette, a pill or a bottle under a red prohibition sign): the visual trait a CNN can learn.
"""

import logging
import os

import numpy as np
from PIL import Image, ImageDraw

from admod.defaults import CLASS_NAMES
from admod.errors import AdmodError

log = logging.getLogger(__name__)

NOT_ALLOWED_SHARE = 0.28  # the reference set: 1,838 of 6,605
SHAPES = ((300, 64), (160, 160), (120, 240), (240, 180), (96, 96))  # banner, square, portrait…


def check_target(folder: str, count: int, force: bool = False) -> None:
    """Refuses, before anything is written, a count that makes no data set and a folder whose
    files demo data would overwrite."""
    if count < 2:
        raise AdmodError(f"--count {count} makes no data set: pass 2 or more (one ad of each "
                         "class at least; 600 by default).")
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise AdmodError(f"'{folder}' is a file, not a folder: pass a folder for the demo data.")
    if os.path.isdir(folder) and any(files for _, _, files in os.walk(folder)) and not force:
        raise AdmodError(f"'{folder}' already holds files, which demo data would overwrite: pass "
                         "a new or empty folder, or --force to write over them.")


def write_demo_data(folder: str, count: int = 600, seed: int = 0,
                    scales: tuple[float, ...] = (1.0,), formats: tuple[str, ...] = ()) -> dict:
    """Writes `count` ads under `folder`/<class>/; returns the number written per class.

    `scales` multiply the ads' sizes (about 100-300 px at 1) and `formats` are file extensions
    that Pillow writes, each used in turn (default formats: about 30% PNG, the rest JPEG)."""
    rng = np.random.default_rng(seed)
    counts = {name: 0 for name in CLASS_NAMES}
    for name in CLASS_NAMES:
        os.makedirs(os.path.join(folder, name), exist_ok=True)
    n_not_allowed = round(count * NOT_ALLOWED_SHARE)
    for index in range(count):
        label = 1 if index < n_not_allowed else 0
        image = draw_ad(rng, label, scales[index % len(scales)])
        if formats:
            extension = formats[index % len(formats)]
        else:
            extension = "png" if rng.random() < 0.3 else "jpg"
        name = CLASS_NAMES[label]
        path = os.path.join(folder, name, f"ad_{index:05d}.{extension}")
        image.save(path, quality=90) if extension == "jpg" else image.save(path)
        counts[name] += 1
    log.info("wrote %d demo ads to %s: %s", count, folder, counts)
    return counts


def _colour(rng, low=0, high=256):
    return tuple(int(c) for c in rng.integers(low, high, size=3))


def draw_ad(rng, label: int, scale: float) -> Image.Image:
    width, height = SHAPES[rng.integers(len(SHAPES))]
    width, height = max(32, int(width * scale)), max(32, int(height * scale))
    image = Image.new("RGB", (width, height), _colour(rng, 90, 256))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(1, 4)):  # text bars
        x0, y0 = rng.integers(0, width // 2), rng.integers(0, height - 8)
        draw.rectangle([x0, y0, x0 + rng.integers(width // 4, width // 2), y0 + 6],
                       fill=_colour(rng, 0, 120))
    for _ in range(rng.integers(1, 3)):  # products
        _draw_product(draw, rng, width, height)
    if label == 1:
        _draw_prohibited(draw, rng, width, height)
    return image


def _draw_product(draw, rng, width, height):
    size = int(min(width, height) * rng.uniform(0.2, 0.4))
    x, y = rng.integers(0, width - size), rng.integers(0, height - size)
    colour = (int(rng.integers(0, 120)), int(rng.integers(60, 256)), int(rng.integers(60, 256)))
    if rng.random() < 0.5:
        draw.rectangle([x, y, x + size, y + size], fill=colour)
    else:
        draw.regular_polygon((x + size / 2, y + size / 2, size / 2), 5, fill=colour)


def _draw_prohibited(draw, rng, width, height):
    size = int(min(width, height) * rng.uniform(0.55, 0.85))
    x, y = rng.integers(0, width - size + 1), rng.integers(0, height - size + 1)
    cx, cy, r = x + size / 2, y + size / 2, size / 2
    item = rng.integers(3)
    if item == 0:  # cigarette
        draw.rectangle([cx - r * 0.6, cy - r * 0.12, cx + r * 0.4, cy + r * 0.12], fill="white")
        draw.rectangle([cx + r * 0.4, cy - r * 0.12, cx + r * 0.6, cy + r * 0.12], fill="orange")
    elif item == 1:  # pill
        draw.rounded_rectangle([cx - r * 0.5, cy - r * 0.2, cx + r * 0.5, cy + r * 0.2],
                               radius=r * 0.2, fill="white", outline="black")
    else:  # bottle
        draw.rectangle([cx - r * 0.2, cy - r * 0.3, cx + r * 0.2, cy + r * 0.5], fill="brown")
        draw.rectangle([cx - r * 0.08, cy - r * 0.55, cx + r * 0.08, cy - r * 0.3], fill="brown")
    line = max(2, int(size * 0.1))
    draw.ellipse([x, y, x + size, y + size], outline=(220, 0, 0), width=line)
    offset = r * 0.7071
    draw.line([cx - offset, cy - offset, cx + offset, cy + offset], fill=(220, 0, 0), width=line)
