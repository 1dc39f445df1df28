"""admod.calibration and the operating point: parameters recovered where the true calibration
is known, scikit-learn's own predictions reproduced by the stored map, decisions unchanged by
construction, and refusals that say why."""

import numpy as np
import pytest
import tensorflow as tf

from admod import calibration, evaluation, serving
from admod.calibration import Calibration, CannotCalibrate
from admod.results import CalibrationFacts


def _known(temperature: float, offset: float = 0.0, count: int = 20_000, seed: int = 0):
    """Labels drawn from true log-odds z, and a model's raw probability sigmoid(T z + offset):
    over-confident by the temperature T, shifted by the offset (what class weighting does)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(-1.0, 2.0, count)
    labels = (rng.random(count) < 1 / (1 + np.exp(-z))).astype(int)
    return labels, 1 / (1 + np.exp(-(temperature * z + offset))), 1 / (1 + np.exp(-z))


@pytest.mark.parametrize("method", ["temperature", "platt"])
@pytest.mark.parametrize("temperature", [0.5, 2.5])
def test_the_temperature_of_a_known_model_is_recovered_within_5_percent(method, temperature):
    labels, raw, _ = _known(temperature)
    fitted = calibration.fit(labels, raw, method)
    assert fitted.temperature == pytest.approx(temperature, rel=0.05)
    if method == "platt":
        assert abs(fitted.intercept) < 0.1


def test_platt_takes_out_the_offset_class_weighting_adds_and_temperature_cannot():
    labels, raw, truth = _known(1.0, offset=np.log(4.0))
    platt, temperature = (calibration.fit(labels, raw, m) for m in ("platt", "temperature"))
    assert platt.intercept == pytest.approx(-np.log(4.0), abs=0.1)
    assert np.abs(platt.apply(raw) - truth).max() < 0.03
    ece = {name: evaluation.expected_calibration_error(labels, c.apply(raw))
           for name, c in (("raw", Calibration()), ("platt", platt), ("temperature", temperature))}
    assert ece["platt"] < 0.02 < ece["temperature"] < ece["raw"]


@pytest.mark.parametrize("method", ["temperature", "platt"])
def test_the_stored_map_reproduces_scikit_learns_calibrated_probabilities(method):
    labels, raw, _ = _known(2.0, offset=0.7, count=3000)
    fitted = calibration.fit(labels, raw, method)
    sklearn_fit = calibration._calibrated_scores(method).fit(raw.reshape(-1, 1), labels)
    expected = sklearn_fit.predict_proba(raw.reshape(-1, 1))[:, 1]
    np.testing.assert_allclose(fitted.apply(raw), expected, atol=1e-9)


def test_the_map_is_increasing_and_inverts_and_none_is_the_identity():
    fitted = Calibration("platt", 0.4, -1.3)
    p = np.linspace(0.001, 0.999, 999)
    assert np.all(np.diff(fitted.apply(p)) > 0)
    assert [fitted.inverse(q) for q in fitted.apply([0.2, 0.7])] == pytest.approx([0.2, 0.7])
    np.testing.assert_array_equal(Calibration().apply(p), p)
    assert Calibration.of(CalibrationFacts(**fitted.facts())) == fitted
    # a version stored before calibration
    assert Calibration.of(CalibrationFacts.from_json(None, 0.5)) == Calibration()


def test_the_serving_graph_computes_the_same_map_as_numpy():
    fitted = Calibration("platt", 0.37, 0.81)
    p = np.array([0.0, 1e-9, 0.013, 0.5, 0.77, 0.999, 1.0], np.float32)
    served = serving._calibrated(tf.constant(p), fitted).numpy()
    np.testing.assert_allclose(served, fitted.apply(p), atol=1e-6)


def test_a_perfectly_separated_validation_set_gets_a_finite_calibration():
    labels = np.array([0] * 40 + [1] * 40)
    raw = np.r_[np.linspace(0.05, 0.3, 40), np.linspace(0.6, 0.95, 40)]
    fitted = calibration.fit(labels, raw, "platt")
    assert 0 < fitted.slope < 50 and np.all(fitted.apply(raw[40:]) < 1)


def test_cross_fitted_figures_come_from_fits_on_the_other_folds():
    labels, raw, _ = _known(1.0, offset=np.log(4.0), count=2000)
    held_out = calibration.cross_fitted(labels, raw, "platt")
    in_sample = calibration.fit(labels, raw, "platt").apply(raw)
    assert not np.allclose(held_out, in_sample)  # five fits, none on the image it scores
    assert np.abs(held_out - in_sample).max() < 0.05
    assert (evaluation.expected_calibration_error(labels, held_out)
            < evaluation.expected_calibration_error(labels, raw) / 3)


def test_scores_that_fall_as_the_positive_share_rises_are_refused_in_one_sentence():
    labels, raw, _ = _known(1.0)
    with pytest.raises(CannotCalibrate, match=r"slope of -.*calibration=none"):
        calibration.fit(labels, 1 - raw, "platt")
    with pytest.raises(CannotCalibrate,
                       match=r"at least 4 images of each class in validation \(it has 1\)"):
        calibration.cross_fitted([0, 0, 0, 1], [0.1, 0.2, 0.3, 0.9], "platt")


@pytest.mark.parametrize("method", ["platt", "temperature"])
@pytest.mark.parametrize("share,score", [(0.25, 0.2), (0.25, 0.7), (0.5, 0.3), (0.25, 1.0)])
def test_a_model_that_gives_every_image_one_score_is_refused_by_either_method(method, share,
                                                                              score):
    # Without the check, each method's fit on these was arbitrary: platt refused 0.7 (a slope
    # of -0.02) and took 0.2, temperature took both (a slope of 9e-5 at 0.7).
    labels = np.array([0] * int(40 * (1 - share)) + [1] * int(40 * share))
    raw = np.full(len(labels), score)
    for calibrate in (calibration.fit, calibration.cross_fitted):
        with pytest.raises(CannotCalibrate, match=r"same probability .*calibration=none"):
            calibrate(labels, raw, method)
    point = evaluation.operating_point(labels, raw, method, "max_f1", 0.5)
    assert point.calibration == Calibration() and "same probability" in point.refused


@pytest.mark.parametrize("rule,target", [("max_f1", 0.5), ("min_precision", 0.8),
                                         ("min_recall", 0.8)])
def test_the_operating_point_decides_every_image_as_the_raw_score_did(rule, target):
    labels, raw, _ = _known(2.5, offset=1.2, count=4000)
    raw = raw.astype(np.float32).astype(np.float64)  # what a model serves
    point = evaluation.operating_point(labels, raw, "platt", rule, target)
    uncalibrated = evaluation.operating_point(labels, raw, "none", rule, target)
    assert point.raw_threshold == uncalibrated.raw_threshold
    assert point.threshold == pytest.approx(point.calibration.apply([point.raw_threshold])[0])
    calibrated = point.calibration.apply(raw)
    np.testing.assert_array_equal(calibrated >= point.threshold, raw >= point.raw_threshold)
    assert not np.allclose(point.held_out, calibrated)  # from fits on the other folds
    assert (evaluation.expected_calibration_error(labels, point.held_out)
            < evaluation.expected_calibration_error(labels, raw) / 3)


def test_a_fixed_threshold_is_one_on_the_calibrated_probability():
    labels, raw, _ = _known(2.5, offset=1.2, count=4000)
    point = evaluation.operating_point(labels, raw, "platt", "fixed", 0.7)
    assert point.threshold == 0.7
    assert point.calibration.apply([point.raw_threshold])[0] == pytest.approx(0.7)


def test_an_impossible_calibration_is_recorded_and_the_raw_score_kept():
    labels, raw, _ = _known(1.0, count=500)
    point = evaluation.operating_point(labels, 1 - raw, "platt", "max_f1", 0.5)
    assert point.calibration == Calibration() and "slope of -" in point.refused
    assert point.facts()["refused"] == point.refused


def test_a_threshold_near_zero_or_one_never_reads_as_0_0000_or_1_0000():
    from admod.metric_names import threshold_text

    assert [threshold_text(t) for t in (3.2e-05, 0.4897, 0.49, 0.99996, 0.5, 0.0, 1.0)] == [
        "3.2e-05", "0.4897", "0.4900", "0.99996", "0.5000", "0.0000", "1.0000"]
