"""evaluate_step on its own: test-split headline, threshold from validation, the champion."""

import html.parser
import json
import os

import pandas as pd
import pytest

from admod import registry, split, steps
from admod import model as model_lib
from admod.metric_names import THRESHOLD_FREE
from admod.options import BlessingOptions, EvaluationOptions
from admod import split_steps
from tests.support import small_resnet, splitting
from tests.support import results

SIZE = 32


@pytest.fixture(scope="module", autouse=True)
def small_base():
    """ResNet50's stand-in (tests/support/small_resnet.py): the evaluation does not depend on the
    architecture."""
    with small_resnet.in_place():
        yield


@pytest.fixture(scope="module")
def setup(demo_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evaluate")
    out = {name: str(tmp / name) for name in split.SPLITS}
    config = splitting.split_config(val_fraction=0.3, test_fraction=0.3, seed=5, min_image_side=32,
                               max_image_pixels=10**7)
    split_steps.split_step(data_root=demo_root, out_dirs=out,
                           manifest_path=str(tmp / "manifest.csv"),
                           report_path=str(tmp / "report.md"), **config)
    model_dir = tmp / "model"
    model_dir.mkdir()
    model, source = model_lib.build_model(SIZE, weights="none")
    model.save(model_dir / registry.MODEL_FILE)
    info = results.phase_summary(image_size=SIZE, weights_source=source)
    (model_dir / registry.MODEL_INFO_FILE).write_text(json.dumps(info.to_json()))
    return tmp, out, str(model_dir), model


def _evaluate(tmp, out, model_dir, registry_root, name, calibration="none"):
    options = EvaluationOptions(blessing=BlessingOptions(min_accuracy=0.01, min_auc=0),
                                threshold_rule="max_f1", threshold_target=0.5, batch_size=8,
                                calibration=calibration,
                                require_gpu=False)
    paths = [str(tmp / f"{name}-{p}") for p in ("metrics.json", "predictions.csv", "report.html")]
    result = steps.evaluate_step(model_dir=model_dir, val_dir=out["validation"],
                                 test_dir=out["test"], registry_root=registry_root,
                                 metrics_path=paths[0],
                                 predictions_path=paths[1], report_path=paths[2], options=options)
    return result, pd.read_csv(paths[1]), open(paths[2]).read()


def test_headline_from_test_with_the_threshold_from_validation(setup):
    tmp, out, model_dir, model = setup
    result, predictions, report = _evaluate(tmp, out, model_dir, str(tmp / "empty-registry"), "a")
    test_count = json.load(open(os.path.join(out["test"], "info.json")))["count"]
    assert result.split == "test" and len(predictions) == test_count == result.scores["count"]
    assert "best F1" in result.threshold_rule and "on validation" in result.threshold_rule
    assert result.champion is None and "no champion yet" in " ".join(result.reasons)
    assert "evaluation on test" in report and "Thresholds" in report


def test_the_champion_is_scored_on_the_same_images(setup):
    tmp, out, model_dir, _ = setup
    root = str(tmp / "registry")
    uri, _ = registry.push(model_dir, root, None)
    result, _, report = _evaluate(tmp, out, model_dir, root, "b")
    assert result.champion == os.path.basename(uri)
    assert result.champion_scores["roc_auc"] == pytest.approx(result.scores["roc_auc"],
                                                                 abs=1e-6)
    assert result.blessed  # not worse than itself
    assert any(f"champion {os.path.basename(uri)}" in r for r in result.reasons)
    assert "champion" in report


def test_a_one_class_split_is_refused_never_scored_as_nan(setup, tmp_path):
    import tensorflow as tf

    from admod import records
    from admod.errors import AdmodError

    tmp, out, model_dir, _ = setup
    one_class = str(tmp_path / "validation")
    writer = records.ShardWriter(one_class, shard_size=50)
    count = 0
    for serialized in tf.data.TFRecordDataset(records.shard_files(out["validation"])):
        if int(records.parse(serialized)["label"]) == 0:
            writer.write(serialized.numpy())
            count += 1
    writer.close()
    records.write_info(one_class, {"count": count})
    options = EvaluationOptions(blessing=BlessingOptions(min_accuracy=0.01, min_auc=0),
                                threshold_rule="max_f1", threshold_target=0.5, batch_size=8,
                                calibration="none",
                                require_gpu=False)
    metrics_path = tmp_path / "metrics.json"
    with pytest.raises(AdmodError, match="validation split holds allowed_ads images only"):
        steps.evaluate_step(model_dir=model_dir, val_dir=one_class, test_dir=one_class,
                            registry_root=str(tmp / "registry-nan"), metrics_path=str(metrics_path),
                            predictions_path=str(tmp_path / "p.csv"),
                            report_path=str(tmp_path / "r.html"), options=options)
    assert not metrics_path.exists()


# --- every figure a report shows is the one computed from what it summarises (issue 39) --------

class _Tables(html.parser.HTMLParser):
    """The cells of every <table> of a page, row by row."""

    def __init__(self):
        super().__init__()
        self.tables, self._cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append(self._cell.strip())
            self._cell = None


def _tables(page: str) -> list[list[list[str]]]:
    parser = _Tables()
    parser.feed(page)
    return parser.tables


def test_every_figure_of_the_evaluation_report_and_card_is_computed_from_the_predictions(setup):
    from sklearn import metrics

    from admod import reports

    tmp, out, model_dir, _ = setup
    result, predictions, report = _evaluate(tmp, out, model_dir, str(tmp / "none"), "figures")
    labels, p = predictions["label"], predictions["probability"]
    at = {}
    for threshold in (result.threshold, 0.5):
        decided = (p >= threshold).astype(int)
        at[threshold] = {"accuracy": metrics.accuracy_score(labels, decided),
                         "precision": metrics.precision_score(labels, decided, zero_division=0),
                         "recall": metrics.recall_score(labels, decided),
                         "f1": metrics.f1_score(labels, decided),
                         "roc_auc": metrics.roc_auc_score(labels, p),
                         "pr_auc": metrics.average_precision_score(labels, p),
                         "brier": metrics.brier_score_loss(labels, p)}
    table = next(t for t in _tables(report) if t[0][0] == "metric")
    rows = {row[0]: row for row in table[1:]}
    for name, value in at[result.threshold].items():
        assert rows[name][1] == f"{value:.4f}", name  # the operating threshold's column
        # the column at 0.5; a figure that does not depend on the threshold shown once
        assert rows[name][3] == ("" if name in THRESHOLD_FREE else f"{at[0.5][name]:.4f}"), name
    assert f"<p>{len(predictions)} images." in report
    decided = (p >= result.threshold).astype(int)
    assert result.scores["confusion_matrix"] == metrics.confusion_matrix(
        labels, decided).tolist()  # the figure's numbers
    per_class = next(t for t in _tables(report) if t[0][0] == "class")
    support = {row[0]: int(row[per_class[0].index("support")]) for row in per_class[1:]}
    assert [support["Allowed"], support["Not allowed"]] == [int((labels == 0).sum()),
                                                                     int((labels == 1).sum())]
    data = {name: json.load(open(os.path.join(out[name], "info.json")))
            for name in ("train", "validation")}
    card = reports.model_card(results.model_info(image_size=SIZE, epochs_run=1, last_epoch=1),
                              result, data, {"run": "r"})
    for name, value in at[result.threshold].items():
        assert f"| {name} | {value:.4f} |" in card, name
    assert "## Intended use" in card and "## Limitations" in card
    assert "Challenger: the model this run trained" in report
    assert ("False positives" in report or "False negatives" in report
            or "No misclassified" in report)
    manifest = split.read_manifest(str(tmp / "manifest.csv"))
    for name, info in data.items():
        for label, count in info["class_counts"].items():
            assert count == ((manifest["split"] == name) & (manifest["label"] == label)).sum()
    card_counts = [line.split("|")[2:4] for line in card.splitlines()
                   if line.startswith("| Allowed")]
    assert [[int(c) for c in card_counts[0]]] == [[data["train"]["class_counts"]["allowed_ads"],
                                                   data["validation"]["class_counts"][
                                                       "allowed_ads"]]]


def test_every_figure_of_the_split_report_is_the_manifests_own(setup):
    tmp, _, _, _ = setup
    manifest = split.read_manifest(str(tmp / "manifest.csv"))
    report = (tmp / "report.md").read_text()
    table = [[cell.strip() for cell in line.strip("|").split("|")]
             for line in report.splitlines()[2:] if line.startswith("|")]
    header, rows = table[0], {row[0]: row for row in table[2:]}
    kept = manifest[manifest["split"] != ""]
    for name in ("train", "validation", "test"):
        of_split = kept[kept["split"] == name]
        counts = [int((of_split["label"] == label).sum()) for label in ("allowed_ads",
                                                                          "not_allowed_ads")]
        if not sum(counts) and name == "test":
            continue
        row = rows[name.capitalize()]
        assert [int(row[header.index(c)]) for c in header[1:3]] == counts, name
        assert int(row[header.index("Total")]) == len(of_split), name
    assert int(rows["Total"][header.index("Total")]) == len(kept)
    # The formats, shapes and sizes per split: the manifest's formats counted here
    formats = _markdown_table(report, "format")
    expected = pd.crosstab(kept["format"], kept["split"])
    for value, counts in expected.iterrows():
        for name, count in counts.items():
            assert int(formats[value][name.capitalize()]) == count, (value, name)


def _markdown_table(report: str, first_cell: str) -> dict:
    """The Markdown table whose header starts with `first_cell`: row name -> column -> cell."""
    lines = report.splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.startswith("|") and line.strip("| ").split("|")[0].strip() == first_cell)
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")),
               len(lines))
    header, _, *rows = [[c.strip() for c in line.strip().strip("|").split("|")]
                        for line in lines[start:end]]
    return {row[0]: dict(zip(header[1:], row[1:], strict=True)) for row in rows}
