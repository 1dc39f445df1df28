"""evaluate_step on its own: test-split headline, threshold from validation, the champion."""

import json
import os

import pandas as pd
import pytest

from admod import registry, split, steps
from admod import model as model_lib
from admod.options import BlessingOptions, EvaluationOptions
from admod import split_steps
from tests import splitting

SIZE = 32


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
    info = {"image_size": SIZE, "weights_source": source}
    (model_dir / registry.MODEL_INFO_FILE).write_text(json.dumps(info))
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
    assert result["split"] == "test" and len(predictions) == test_count == result["scores"]["count"]
    assert "best F1" in result["threshold_rule"] and "on validation" in result["threshold_rule"]
    assert result["champion"] is None and "no champion yet" in " ".join(result["reasons"])
    assert "evaluation on test" in report and "Thresholds" in report


def test_the_champion_is_scored_on_the_same_images(setup):
    tmp, out, model_dir, _ = setup
    root = str(tmp / "registry")
    uri, _ = registry.push(model_dir, root, None)
    result, _, report = _evaluate(tmp, out, model_dir, root, "b")
    assert result["champion"] == os.path.basename(uri)
    assert result["champion_scores"]["roc_auc"] == pytest.approx(result["scores"]["roc_auc"],
                                                                 abs=1e-6)
    assert result["blessed"]  # not worse than itself
    assert any(f"champion {os.path.basename(uri)}" in r for r in result["reasons"])
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
