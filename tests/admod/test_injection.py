"""File names are data, never markup or formulas: Markdown reports and CSVs stay inert."""

import markdown
import pandas as pd
import pytest

from admod import reports, split
from admod.defaults import CLASS_NAMES
from admod.results import Evaluation
from admod import split_steps
from tests.support import splitting
from tests.support import results

HOSTILE = "x`<img src=x onerror=alert(2)>`y.jpg"
RECONCILED = dict.fromkeys(["listed", "checked", "usable", "excluded_by_check", "merged", "train",
                            "validation", "test", "duplicate", "label_conflict"], 0)


def test_a_backtick_cannot_break_out_of_the_split_reports_code_span():
    counts = pd.DataFrame({"train": [3, 2], "validation": [1, 1], "test": [0, 0]},
                          index=list(CLASS_NAMES))
    text = reports.split_markdown(counts, pd.Series(dtype=int), [f"/data/{HOSTILE}"], [],
                                  RECONCILED)
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
    config = splitting.split_config(val_fraction=0.3, test_fraction=0.0, seed=1, min_image_side=32,
                               max_image_pixels=10**7)
    split_steps.split_step(data_root="=ads", out_dirs=out, manifest_path="manifest.csv",
                     report_path="r.md", **config)
    uris = pd.read_csv("manifest.csv")["uri"]
    assert len(uris) > 0 and all(u.startswith("'=ads/") for u in uris)


SCRIPT = '"><script>alert(1)</script>.png'  # the name a hostile uploader picks


class _Tags(__import__("html.parser").parser.HTMLParser):
    """Every element a browser would build from a page, and every title attribute."""

    def __init__(self, page: str):
        super().__init__()
        self.tags, self.titles = [], []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.titles += [value for name, value in attrs if name == "title"]


def _png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 40, 40)).save(out, "PNG")
    return out.getvalue()


def _evaluation_result(scored: pd.DataFrame, threshold: float) -> Evaluation:
    from admod import evaluation

    scores = evaluation.classification_metrics(scored["label"], scored["probability"], threshold)
    return results.evaluation(scores, threshold=threshold, threshold_rule=f"rule {SCRIPT}",
                              champion=f"v1{SCRIPT}", champion_scores=scores, blessed=False,
                              reasons=[f"reason {SCRIPT}"],
                              calibration={"method": "none", "refused": f"refused {SCRIPT}"})


def test_the_evaluation_page_shows_a_hostile_file_name_as_text_never_markup():
    from admod import evaluation

    uri = f"gs://ads/not_allowed_ads/{SCRIPT}"
    scored = pd.DataFrame({"uri": ["a.png", "b.png", uri, "d.png"], "label": [0, 1, 1, 0],
                           "probability": [0.1, 0.8, 0.3, 0.6]})
    scored["raw_probability"] = scored["held_out_probability"] = scored["probability"]
    table = evaluation.threshold_table(scored["label"], scored["probability"], 0.5)
    page = reports.evaluation_html(_evaluation_result(scored, 0.5), scored, table,
                                   gallery=[(_png(), uri, 1, 0.3)])
    parsed = _Tags(page)
    assert "script" not in parsed.tags
    assert uri in parsed.titles  # the full uri on hover, as text
    # reasons, rule, champion, a refused calibration
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4
    assert "<script>" not in page


def test_the_training_page_escapes_what_it_shows():
    history = pd.DataFrame({"epoch": [1, 2], "loss": [0.7, 0.5], "val_loss": [0.8, 0.6],
                            "accuracy": [0.5, 0.7], "val_accuracy": [0.5, 0.6],
                            "auc": [0.5, 0.8], "val_auc": [0.5, 0.7], "phase": [SCRIPT] * 2})
    page = reports.training_html(history, results.phase_summary(phase=SCRIPT, best_epoch=2))
    assert "script" not in _Tags(page).tags and "<script>" not in page
    assert "&lt;script&gt;" in page


def test_the_model_card_shows_hostile_lineage_as_code():
    scored = pd.DataFrame({"label": [0, 1, 1, 0], "probability": [0.1, 0.8, 0.3, 0.6]})
    result = _evaluation_result(scored, 0.5)
    info = results.model_info(weights_source=f"/w/{SCRIPT}")
    data = {"train": {"class_counts": {n: 3 for n in CLASS_NAMES}}}
    card = reports.model_card(info, result, data, {"data_root": f"gs://ads/{SCRIPT}"})
    rendered = markdown.markdown(card)
    assert "<script>" not in rendered and rendered.count("&lt;script&gt;") >= 3


def test_the_split_report_shows_a_hostile_file_name_as_code():
    counts = pd.DataFrame({"train": [3, 2], "validation": [1, 1], "test": [0, 0]},
                          index=list(CLASS_NAMES))
    text = reports.split_markdown(counts, pd.Series(dtype=int), [f"/data/{SCRIPT}"],
                                  [f"/data/b/{SCRIPT}"], RECONCILED)
    rendered = markdown.markdown(text)
    assert "<script>" not in rendered and rendered.count("&lt;script&gt;") == 2
