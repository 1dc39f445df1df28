"""File names are data, never markup or formulas: Markdown reports and CSVs stay inert."""

import markdown
import pandas as pd
import pytest

from admod import reports, split, steps
from admod.defaults import CLASS_NAMES

HOSTILE = "x`<img src=x onerror=alert(2)>`y.jpg"


def test_a_backtick_cannot_break_out_of_the_split_reports_code_span():
    counts = pd.DataFrame({"train": [3, 2], "validation": [1, 1], "test": [0, 0]},
                          index=list(CLASS_NAMES))
    text = reports.split_markdown(counts, pd.Series(dtype=int), [f"/data/{HOSTILE}"], [], 5)
    rendered = markdown.markdown(text)
    assert "<img" not in rendered and "&lt;img src=x onerror=alert(2)&gt;" in rendered


@pytest.mark.parametrize("name, expected", [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("+1.jpg", "'+1.jpg"),
    ("-cmd.png", "'-cmd.png"), ("@SUM(A1).png", "'@SUM(A1).png"), ("plain.jpg", "plain.jpg"),
])
def test_csv_cells_never_start_a_formula(name, expected):
    assert reports.csv_safe(name) == expected


def test_the_manifest_quotes_formula_like_names(tmp_path, demo_root, monkeypatch):
    import shutil

    monkeypatch.chdir(tmp_path)
    shutil.copytree(demo_root, "=ads")  # a relative data root: every uri starts with "="
    out = {name: str(tmp_path / name) for name in split.SPLITS}
    config = split.SplitConfig(val_fraction=0.3, test_fraction=0.0, seed=1, min_side=32,
                               max_pixels=10**7)
    steps.split_step("=ads", out, "manifest.csv", "r.md", config)
    uris = pd.read_csv("manifest.csv")["uri"]
    assert len(uris) > 0 and all(u.startswith("'=ads/") for u in uris)
