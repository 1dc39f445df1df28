"""evaluate_step and push_step together, on images whose class is their colour, scored by
models whose outputs are known by construction: predictions line up with the source files
across shards, a better and a worse champion lead to opposite decisions, the chosen threshold
reaches serving, and a champion that moves before push stops it."""

import json
import os

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from kfp.dsl import Dataset, Metrics, Model
from PIL import Image
from sklearn.metrics import f1_score

from admod import datasets, registry, serving, split, steps
from admod.calibration import Calibration
from admod.components import push as push_component
from admod.defaults import CLASS_NAMES
from admod.errors import USER_ERROR_STATUS, AdmodError
from admod.options import BlessingOptions, EvaluationOptions
from admod import split_steps
from tests.support import splitting
from tests.support import results

pytestmark = pytest.mark.first(seconds=45)  # the order: tests/conftest.py

SIZE = 32
PER_CLASS = 40


def _write_colour_ads(root) -> None:
    """Allowed ads are blue, not-allowed ads red; green is noise, unrelated to the class."""
    rng = np.random.default_rng(11)
    for label, name in enumerate(CLASS_NAMES):
        os.makedirs(root / name)
        for i in range(PER_CLASS):
            low, high = rng.integers(40, 110), rng.integers(150, 220)
            red, blue = (high, low) if label else (low, high)
            pixels = np.empty((40, 40, 3), np.uint8)
            pixels[...] = (red, rng.integers(0, 256), blue)
            Image.fromarray(pixels).save(root / name / f"ad_{i:02d}.png")


def _colour_model(red: float, green: float, blue: float, bias: float) -> keras.Model:
    """p(not allowed) = sigmoid(red * R + green * G + blue * B + bias), R, G, B image means."""
    inputs = keras.Input((SIZE, SIZE, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    dense = keras.layers.Dense(1, activation="sigmoid")
    model = keras.Model(inputs, dense(pooled))
    dense.set_weights([np.array([[red], [green], [blue]], np.float32),
                       np.array([bias], np.float32)])
    return model


# Red minus blue separates the classes exactly; green is noise the challenger leans on.
SEPARATING = (0.05, 0.0, -0.05, 0.0)  # ROC-AUC 1 by construction
INVERTED = (-0.05, 0.0, 0.05, 0.0)  # ROC-AUC 0 by construction
CHALLENGER = (0.01, 0.03, -0.01, -3.84)
# Ranks well but over-confident and shifted towards not allowed, as class weighting leaves it.
MISCALIBRATED = (0.04, 0.03, -0.04, -1.0)


def _model_folder(folder, weights, threshold=0.5) -> str:
    os.makedirs(folder, exist_ok=True)
    _colour_model(*weights).save(os.path.join(folder, registry.MODEL_FILE))
    with open(os.path.join(folder, registry.MODEL_INFO_FILE), "w") as f:
        json.dump(results.model_info(image_size=SIZE, weights_source="test", threshold=threshold,
                                     preprocessing="none", epochs_run=1, last_epoch=1).to_json(),
                  f)
    return str(folder)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("colour")
    _write_colour_ads(tmp / "ads")
    out = {name: str(tmp / name) for name in split.SPLITS}
    config = splitting.split_config(val_fraction=0.3, test_fraction=0.3, seed=3, min_image_side=32,
                               shard_size=3)
    split_steps.split_step(data_root=str(tmp / "ads"), out_dirs=out,
                     manifest_path=str(tmp / "manifest.csv"), report_path=str(tmp / "r.md"),
                     **config)
    return tmp, out, pd.read_csv(tmp / "manifest.csv")


def _evaluate(tmp, out, registry_root, name, rule="max_f1", target=0.5, calibration="none",
              weights=CHALLENGER, criteria=None, manifest=None):
    criteria = criteria or BlessingOptions(min_accuracy=0.01, min_auc=0)
    options = EvaluationOptions(blessing=criteria, threshold_rule=rule, threshold_target=target,
                                calibration=calibration, batch_size=4, require_gpu=False)
    paths = {p: str(tmp / f"{name}-{p}") for p in ("metrics.json", "predictions.csv", "report")}
    result = steps.evaluate_step(
        model_dir=_model_folder(tmp / _folder_name(weights), weights),
        val_dir=out["validation"],
        test_dir=out["test"], registry_root=str(registry_root),
        metrics_path=paths["metrics.json"], predictions_path=paths["predictions.csv"],
        report_path=paths["report"], options=options, manifest_path=manifest)
    return result, paths


def _folder_name(weights) -> str:
    return "challenger" if weights == CHALLENGER else "model-" + "_".join(map(str, weights))


def _champion_registry(tmp, name, weights) -> str:
    root = str(tmp / f"registry-{name}")
    registry.push(_model_folder(tmp / f"champion-{name}", weights), root, expected_champion=None)
    return root


def _source_probabilities(model, uris) -> list[float]:
    """The model on each source file, decoded on its own: no shard, no order but `uris`'
    (tf.data only to run the decode as a graph)."""
    files = tf.data.Dataset.from_tensor_slices([open(uri, "rb").read() for uri in uris])
    images = files.map(lambda data: datasets.decode_and_resize(data, SIZE))
    return [float(model(tf.cast(image[None], tf.float32)).numpy().ravel()[0])
            for image in images]


def test_predictions_line_up_with_their_source_files_across_shards(data):
    tmp, out, manifest = data
    assert len([f for f in os.listdir(out["test"]) if f.endswith(".tfrecord")]) >= 3
    result, paths = _evaluate(tmp, out, tmp / "no-registry", "order")
    predictions = pd.read_csv(paths["predictions.csv"])
    assert set(predictions["uri"]) == set(manifest.loc[manifest["split"] == "test", "uri"])
    expected = _source_probabilities(_colour_model(*CHALLENGER), predictions["uri"])
    for row, probability in zip(predictions.itertuples(), expected, strict=True):
        folder = os.path.basename(os.path.dirname(row.uri))  # the class, from the source path
        assert row.label == CLASS_NAMES.index(folder), row.uri
        assert row.probability == pytest.approx(probability, abs=1e-5), row.uri
    assert result.scores["count"] == len(predictions)


def test_the_threshold_is_the_best_f1_one_on_validation(data):
    tmp, out, manifest = data
    result, _ = _evaluate(tmp, out, tmp / "no-registry", "max-f1", rule="max_f1")
    uris = manifest.loc[manifest["split"] == "validation", "uri"]
    probabilities = np.array(_source_probabilities(_colour_model(*CHALLENGER), uris))
    labels = [CLASS_NAMES.index(os.path.basename(os.path.dirname(uri))) for uri in uris]
    best = max(f1_score(labels, probabilities >= t) for t in probabilities)
    chosen = f1_score(labels, probabilities >= result.threshold - 1e-6)
    assert chosen == pytest.approx(best)
    assert np.isclose(probabilities, result.threshold, atol=1e-5).any()  # a validation score
    assert result.split == "test"


@pytest.mark.parametrize("champion, champion_auc, blessed", [
    (SEPARATING, 1.0, False),  # the champion is better: the challenger is not blessed
    (INVERTED, 0.0, True),  # the champion is worse: the challenger is blessed
])
def test_a_better_and_a_worse_champion_scored_on_the_same_images(data, champion, champion_auc,
                                                                 blessed):
    tmp, out, _ = data
    root = _champion_registry(tmp, f"auc{champion_auc:g}", champion)
    result, _ = _evaluate(tmp, out, root, f"vs{champion_auc:g}")
    assert result.champion == registry.champion(root)
    assert result.champion_scores["roc_auc"] == champion_auc
    assert result.champion_scores["count"] == result.scores["count"]  # the same images
    assert 0.05 < result.scores["roc_auc"] < 0.95  # the challenger really differs
    assert result.blessed is blessed
    assert any("champion" in reason for reason in result.reasons)


def _push(tmp, out, metrics_path, root, name, weights=CHALLENGER, **vertex):
    return steps.push_step(model_dir=str(tmp / _folder_name(weights)),
                           evaluation_path=metrics_path,
                           train_dir=out["train"], val_dir=out["validation"],
                           registry_root=str(root), run_id=f"run-{name}",
                           staging_dir=str(tmp / f"staging-{name}"), **vertex)


def test_the_threshold_evaluate_chooses_reaches_model_info_card_and_serving(data):
    tmp, out, manifest = data
    root = tmp / "registry-threshold"
    result, paths = _evaluate(tmp, out, root, "threshold", rule="fixed", target=0.7)
    assert result.threshold == 0.7 and result.blessed
    version = _push(tmp, out, paths["metrics.json"], root, "threshold")["uri"]
    info = json.load(open(os.path.join(version, registry.MODEL_INFO_FILE)))
    assert info["threshold"] == 0.7
    assert "operating threshold 0.7000" in open(os.path.join(version,
                                                             registry.MODEL_CARD_FILE)).read()
    serve = serving.load(registry.serving_model_dir(version))
    uris = list(manifest.loc[manifest["split"] != "", "uri"])
    scored = serve(image_bytes=tf.constant([open(uri, "rb").read() for uri in uris]))
    probabilities = scored["probability"].numpy()
    labels = [label.decode() for label in scored["label"].numpy()]
    assert any(0.5 <= p < 0.7 for p in probabilities)  # where a 0.5 threshold would differ
    assert labels == [CLASS_NAMES[int(p >= 0.7)] for p in probabilities]


def test_a_champion_that_changed_since_evaluation_stops_push_and_is_the_next_baseline(
        data, capsys):
    tmp, out, _ = data
    root = _champion_registry(tmp, "moving", SEPARATING)
    evaluated_against = registry.champion(root)
    result, paths = _evaluate(tmp, out, root, "moving-1")
    assert result.champion == evaluated_against
    # Another run promotes a different model between this run's evaluation and its push.
    newer, _ = registry.push(_model_folder(tmp / "newer", INVERTED), root, evaluated_against)
    newer = os.path.basename(newer)

    with pytest.raises(registry.ChampionChanged,
                       match=f"is stored complete but not made champion: the champion is now "
                             f"{newer}, not {evaluated_against}"):
        _push(tmp, out, paths["metrics.json"], root, "step")
    with pytest.raises(SystemExit) as exit_:
        push_component(
            model=Model(uri=str(tmp / "challenger")), evaluation=Metrics(uri=paths["metrics.json"]),
            train=Dataset(uri=out["train"]), validation=Dataset(uri=out["validation"]),
            registry_root=str(root), run_id="run-component", vertex_model="",
            vertex_project="", vertex_location="", vertex_serving_image="",
            vertex_default_alias=False, published=Model(uri=str(tmp / "published")))
    assert exit_.value.code == USER_ERROR_STATUS
    assert f"the champion is now {newer}, not {evaluated_against}" in capsys.readouterr().err
    assert registry.champion(root) == newer

    again, _ = _evaluate(tmp, out, root, "moving-2")
    assert again.champion == newer
    assert again.champion_scores["roc_auc"] == 0.0  # the newer champion, INVERTED


def test_push_adds_the_version_to_the_vertex_model_with_its_lineage(data, bucket, monkeypatch):
    from admod import vertex_registry, vertex_targets
    from tests.support.fake_vertex import LOCATION, PARENT, PROJECT, fake_vertex, model_service

    tmp, out, _ = data
    root = f"gs://{bucket.name}/registry"
    result, paths = _evaluate(tmp, out, root, "vertex", manifest=str(tmp / "manifest.csv"))
    with fake_vertex() as (server, url):
        vertex = {"vertex": vertex_targets.ModelTarget("admod-ads", PROJECT, LOCATION),
                  "vertex_api": model_service(url)}
        server.fail["models:upload"] = 503  # Vertex unavailable, after admod's push
        with pytest.raises(AdmodError, match="is stored complete in .* retry the push step"):
            _push(tmp, out, paths["metrics.json"], root, "vertex", **vertex)
        stored = registry.complete_versions(root)
        server.fail.clear()
        pushed = _push(tmp, out, paths["metrics.json"], root, "vertex", **vertex)  # the retry
        # The component, from its parameters: the same model again, found on both sides.
        monkeypatch.setattr(vertex_registry, "client", lambda location: vertex["vertex_api"])
        published = Model(uri=str(tmp / "published-vertex"))
        push_component(
            model=Model(uri=str(tmp / "challenger")), evaluation=Metrics(uri=paths["metrics.json"]),
            train=Dataset(uri=out["train"]), validation=Dataset(uri=out["validation"]),
            registry_root=root, run_id="run-vertex", vertex_model="admod-ads",
            vertex_project=PROJECT, vertex_location=LOCATION, vertex_serving_image="img:1",
            vertex_default_alias=False, published=published)
        (version,) = server.models["1000"]
    assert published.metadata["vertex_model_version"] == f"{PARENT}/models/1000@1"
    assert published.metadata["registry_uri"] == pushed["uri"]
    assert published.uri == str(tmp / "published-vertex")  # the launcher's, never rewritten
    assert registry.complete_versions(root) == stored == [pushed["version"]]
    assert pushed["new_version"] is False  # the same model: nothing stored twice
    assert pushed["vertex_model_version"] == f"{PARENT}/models/1000@1"
    assert version["artifactUri"] == registry.serving_model_dir(pushed["uri"])
    fingerprint = json.load(open(os.path.join(out["train"], "info.json")))["data_fingerprint"]
    assert version["labels"] == {"admod_version": pushed["version"], "admod_run": "run-vertex",
                                 "admod_data": fingerprint[:16]}
    assert version["versionAliases"] == ["default", "champion"]
    assert f"roc_auc {result.scores['roc_auc']:.4f}" in version["description"]
    # The whole evaluation reaches Vertex: its intervals, and its slices (push once stored a
    # subset of the evaluation in the version, and Vertex never saw either).
    (evaluation,) = version["evaluations"]
    assert evaluation["metadata"]["intervals"] == json.loads(json.dumps(result.intervals))
    assert result.slices and len(evaluation["slices"]) == len(result.slices)


def test_the_calibrated_model_serves_calibrated_probabilities_and_the_same_labels(data):
    """The same model evaluated and pushed with calibration=platt and =none: the validation
    images get the same labels from both exports; only the probabilities differ, and the
    calibrated ones are the stored map of the raw ones. Both ECEs reach the model card,
    model_info.json and metrics.json; the next evaluation scores the champion calibrated."""
    tmp, out, manifest = data
    served, outcomes = {}, {}
    uris = list(manifest.loc[manifest["split"] == "validation", "uri"])
    for method in ("platt", "none"):
        root = tmp / f"registry-calibration-{method}"
        result, paths = _evaluate(tmp, out, root, f"cal-{method}", calibration=method,
                                  weights=MISCALIBRATED)
        assert result.blessed, result.reasons
        version = _push(tmp, out, paths["metrics.json"], root, method, MISCALIBRATED)["uri"]
        serve = serving.load(registry.serving_model_dir(version))
        outputs = serve(image_bytes=tf.constant([open(uri, "rb").read() for uri in uris]))
        served[method] = ([label.decode() for label in outputs["label"].numpy()],
                          outputs["probability"].numpy())
        outcomes[method] = result, version
    (platt, platt_version), (none, _) = outcomes["platt"], outcomes["none"]
    assert served["platt"][0] == served["none"][0]
    assert len(set(served["platt"][0])) == 2  # both labels are served
    calibration = platt.calibration
    assert calibration.method == "platt" and not calibration.refused
    np.testing.assert_allclose(
        served["platt"][1], Calibration.of(calibration).apply(served["none"][1]),
        atol=1e-5)
    assert np.abs(served["platt"][1] - served["none"][1]).max() > 0.05
    # Ranking and decisions unchanged, calibration figures moved.
    for name in ("roc_auc", "pr_auc", "accuracy", "precision", "recall", "confusion_matrix"):
        assert platt.scores[name] == none.scores[name], name
    assert platt.scores["accuracy"] < 1  # the classes overlap: the labels could differ
    assert calibration.ece_raw == pytest.approx(none.scores["ece"])
    assert platt.scores_at_0_5["ece"] == platt.scores["ece"]  # one figure, any threshold
    assert platt.scores["ece"] != pytest.approx(calibration.ece_raw)
    info = json.load(open(os.path.join(platt_version, registry.MODEL_INFO_FILE)))
    assert info["calibration"]["slope"] == calibration.slope
    assert (info["ece"], info["ece_raw"]) == (platt.scores["ece"], calibration.ece_raw)
    card = open(os.path.join(platt_version, registry.MODEL_CARD_FILE)).read()
    assert f"ECE {platt.scores['ece']:.4f} (raw score {calibration.ece_raw:.4f})" in card
    stored = json.load(open(os.path.join(platt_version, registry.METRICS_FILE)))
    assert stored["calibration"] == calibration.to_json()
    again, _ = _evaluate(tmp, out, tmp / "registry-calibration-platt", "cal-again",
                         calibration="platt", weights=MISCALIBRATED)
    assert again.champion_scores["ece"] == pytest.approx(again.scores["ece"], abs=0.05)
    assert again.champion_scores["confusion_matrix"] == again.scores["confusion_matrix"]


def test_a_calibration_that_cannot_be_made_is_named_and_refuses_the_blessing(data):
    """Scores that fall as the not-allowed share rises (ROC-AUC 0 by construction): no
    increasing map calibrates them; the raw score is reported as it is, and never pushed."""
    tmp, out, _ = data
    result, paths = _evaluate(tmp, out, tmp / "registry-refused", "refused",
                              calibration="platt", weights=INVERTED)
    assert not result.blessed
    assert result.reasons[0].startswith("refused: Calibration (platt) fitted a slope of -")
    assert result.calibration.method == "none"
    assert result.scores["ece"] == result.calibration.ece_raw
    assert "Calibration refused: Calibration (platt) fitted a slope" in open(paths["report"]).read()


# --- the champion compared paired, with its interval, overall and per slice (issue 34) -------

SLIGHTLY_BETTER = (0.015, 0.03, -0.015, -3.84)  # the challenger's, leaning less on green
SLIGHTLY_WORSE = (0.008, 0.03, -0.008, -3.84)


@pytest.mark.parametrize("rule, blessed", [("not_worse_beyond_noise", True), ("point", False)])
def test_a_champion_better_only_within_noise(data, rule, blessed):
    """The champion beats the challenger by more than max_regression, but not beyond noise:
    the default rule blesses (a push does not flip on noise), the point rule refuses."""
    tmp, out, _ = data
    root = _champion_registry(tmp, f"slightly-better-{rule}", SLIGHTLY_BETTER)
    result, _ = _evaluate(tmp, out, root, f"within-noise-{rule}",
                          criteria=BlessingOptions(min_accuracy=0.01, min_auc=0,
                                                   champion_rule=rule))
    difference = result.champion_differences["roc_auc"]
    assert difference["difference"] > BlessingOptions.max_regression  # worse at the point
    assert difference["interval"][0] <= BlessingOptions.max_regression  # not beyond noise
    assert result.blessed is blessed
    reason = next(r for r in result.reasons if "champion" in r)
    if rule == "point":
        assert "- max_regression" in reason
    else:
        low, high = difference["interval"]
        assert f"[{low:+.4f}, {high:+.4f}]" in reason and "not worse beyond noise" in reason


def test_a_challenger_better_within_noise_is_blessed_and_one_worse_beyond_it_refused(data):
    tmp, out, _ = data
    better, _ = _evaluate(tmp, out, _champion_registry(tmp, "slightly-worse", SLIGHTLY_WORSE),
                          "better-within-noise")
    assert better.champion_differences["roc_auc"]["difference"] < 0
    assert better.champion_differences["roc_auc"]["interval"][1] >= 0  # not beyond noise
    assert better.blessed
    worse, _ = _evaluate(tmp, out, _champion_registry(tmp, "separating-paired", SEPARATING),
                         "worse-beyond-noise")
    assert worse.champion_differences["roc_auc"]["interval"][0] > 0.005
    assert not worse.blessed
    assert any("worse beyond noise" in r for r in worse.reasons)


def test_every_headline_figure_has_its_interval_in_metrics_report_and_card(data):
    tmp, out, _ = data
    result, paths = _evaluate(tmp, out, tmp / "no-registry", "intervals")
    stored = json.load(open(paths["metrics.json"]))
    for name in ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "ece"):
        low, high = stored["intervals"][name]
        assert low <= result.scores[name] <= high, name
    report = open(paths["report"]).read()
    low, high = stored["intervals"]["roc_auc"]
    assert f"[{low:.4f}, {high:.4f}]" in report
    assert stored["optimistic"] == ""  # the headline comes from test
    published = _push(tmp, out, paths["metrics.json"], tmp / "registry-intervals", "intervals")
    card = open(os.path.join(published["uri"], registry.MODEL_CARD_FILE)).read()
    assert f"| roc_auc | {result.scores['roc_auc']:.4f} | [{low:.4f}, {high:.4f}] |" in card


def _write_shaped_ads(root) -> None:
    """Squares and banners, the class in red vs blue. Green is constant on squares; on banners
    it is high for allowed ads, low for not allowed, which a model leaning on green inverts."""
    rng = np.random.default_rng(5)
    for label, name in enumerate(CLASS_NAMES):
        os.makedirs(root / name)
        for i in range(2 * PER_CLASS):
            banner = i % 2 == 1
            low, high = rng.integers(40, 110), rng.integers(150, 220)
            red, blue = (high, low) if label else (low, high)
            green = (rng.integers(0, 40) if label else rng.integers(215, 256)) if banner else 128
            pixels = np.empty((40, 120 if banner else 40, 3), np.uint8)
            pixels[...] = (red, green, blue)
            Image.fromarray(pixels).save(root / name / f"ad_{i:02d}.{'gif' if banner else 'png'}")


LEANS_ON_GREEN = (0.01, 0.03, -0.01, -3.84)  # fine on squares, inverted on banners


@pytest.fixture(scope="module")
def shaped(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shaped")
    _write_shaped_ads(tmp / "ads")
    out = {name: str(tmp / name) for name in split.SPLITS}
    config = splitting.split_config(val_fraction=0.3, test_fraction=0.3, seed=3,
                                    min_image_side=32, shard_size=5)
    split_steps.split_step(data_root=str(tmp / "ads"), out_dirs=out,
                           manifest_path=str(tmp / "manifest.csv"),
                           report_path=str(tmp / "r.md"), **config)
    return tmp, out, str(tmp / "manifest.csv")


def _by_slice(result):
    return {(s["dimension"], s["value"]): s for s in result.slices}


@pytest.mark.parametrize("slice_gate", [False, True])
def test_a_model_that_fails_one_slice_only_is_refused_by_the_slice_gate(shaped, slice_gate):
    tmp, out, manifest = shaped
    root = _champion_registry(tmp, f"separating-{slice_gate}", SEPARATING)
    criteria = BlessingOptions(min_accuracy=0.01, min_auc=0, max_regression=0.9,
                               slice_gate=slice_gate, min_slice_size=10)
    result, paths = _evaluate(tmp, out, root, f"slices-{slice_gate}", weights=LEANS_ON_GREEN,
                              criteria=criteria, manifest=manifest)
    slices = _by_slice(result)
    banners, squares = slices["shape", "banner"], slices["shape", "square"]
    assert slices["format", "GIF"]["count"] == banners["count"]  # the banners are the GIFs
    assert banners["gated"] and squares["gated"]
    assert squares["figures"]["roc_auc"] == 1.0 and banners["figures"]["roc_auc"] == 0.0
    assert banners["champion_difference"]["interval"][0] > 0.9  # worse beyond noise there
    overall = result.champion_differences["roc_auc"]
    assert overall["interval"][0] <= 0.9  # in aggregate, not beyond max_regression
    manifest_rows = pd.read_csv(manifest)
    test_rows = manifest_rows[manifest_rows["split"] == "test"]
    assert sum(s["count"] for (d, _), s in slices.items() if d == "shape") == len(test_rows)
    assert banners["count"] == (test_rows["width"] == 120).sum()
    assert result.blessed is not slice_gate
    if slice_gate:
        assert any(r.startswith("slice shape=banner") and "worse beyond noise" in r
                   for r in result.reasons)
    report = open(paths["report"]).read()
    assert "<h2>Slices</h2>" in report and "shape=banner" in report
