import hashlib
import os

from PIL import Image

from admod.demo_data import write_demo_data


def _digest(folder):
    h = hashlib.sha256()
    for dirpath, _, files in sorted(os.walk(folder)):
        for name in sorted(files):
            h.update(name.encode())
            with open(os.path.join(dirpath, name), "rb") as f:
                h.update(f.read())
    return h.hexdigest()


def test_layout_share_formats_and_sizes(tmp_path):
    counts = write_demo_data(str(tmp_path), count=100, seed=3)
    assert counts == {"allowed_ads": 72, "not_allowed_ads": 28}
    sizes, formats = set(), set()
    for label in counts:
        for name in os.listdir(tmp_path / label):
            with Image.open(tmp_path / label / name) as image:
                sizes.add(image.size)
                formats.add(image.format)
    assert formats == {"JPEG", "PNG"}
    assert any(w > 2 * h for w, h in sizes) and any(h > w for w, h in sizes)  # banners, portraits


def test_deterministic_for_a_seed(tmp_path):
    write_demo_data(str(tmp_path / "a"), count=20, seed=5)
    write_demo_data(str(tmp_path / "b"), count=20, seed=5)
    write_demo_data(str(tmp_path / "c"), count=20, seed=6)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")
