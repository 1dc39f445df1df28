"""Calibrating the model's score: a map from its raw probability to one that means what it says.

Both methods refit the logit z = log(p / (1 - p)) of the raw probability p:

  platt        sigmoid(slope * z + intercept): the default. Class weighting moves the minority's
               scores by an offset on the logit (the log of the weight ratio) that differs run
               to run; only an intercept can take it back out.
  temperature  sigmoid(z / temperature): one parameter, the intercept fixed at 0 (Guo et al.,
               2017); it corrects over- or under-confidence but not an offset.
  none         the raw probability.

Either is fitted by scikit-learn's CalibratedClassifierCV on validation scores (Platt's method
with its smoothed targets, so that a validation set the model separates perfectly still gets a
finite slope). Both are increasing in p (a fitted slope <= 0 is refused), so ROC-AUC, PR-AUC
and the operating threshold's decisions do not change: the threshold is mapped with the scores.
"""

import dataclasses

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from admod.errors import AdmodError
from admod.results import CalibrationFacts

# Raw probabilities are float32 sigmoids: clipped away from 0 and 1 before the logit, in
# NumPy and in the serving graph alike.
EPSILON = 1e-7
FOLDS = 5  # cross-fitting: the calibrated validation figures come from held-out folds


class CannotCalibrate(AdmodError):
    """Too few validation images, or scores that fall as the positive share rises."""


@dataclasses.dataclass(frozen=True)
class Calibration:
    method: str = "none"
    slope: float = 1.0
    intercept: float = 0.0

    @property
    def temperature(self) -> float:
        return 1.0 / self.slope

    def apply(self, probabilities) -> np.ndarray:
        """The calibrated probabilities of raw ones."""
        p = np.asarray(probabilities, dtype=np.float64)
        if self.method == "none":
            return p
        return sigmoid(self.slope * logit(p) + self.intercept)

    def inverse(self, probability: float) -> float:
        """The raw probability that `apply` maps to `probability`."""
        if self.method == "none":
            return float(probability)
        z = (float(logit(probability)) - self.intercept) / self.slope
        return float(sigmoid(z))

    def facts(self) -> dict:
        return {"method": self.method, "slope": self.slope, "intercept": self.intercept,
                "temperature": self.temperature}

    @classmethod
    def of(cls, facts: "CalibrationFacts") -> "Calibration":
        """The calibration a stored result describes."""
        return cls(facts.method, float(facts.slope), float(facts.intercept))


UNCALIBRATED = Calibration()


def logit(probabilities) -> np.ndarray:
    p = np.clip(np.asarray(probabilities, dtype=np.float64), EPSILON, 1 - EPSILON)
    return np.log(p) - np.log1p(-p)


def sigmoid(z) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


def fit(labels, probabilities, method: str) -> Calibration:
    """The calibration of `method` fitted to `labels` (0/1) from the raw `probabilities`, by
    scikit-learn's CalibratedClassifierCV around the frozen scores."""
    if method == "none":
        return Calibration()
    _require_of_each_class(labels, 2)
    _require_varying(probabilities)
    fitted = _calibrated_scores(method).fit(_column(probabilities), np.asarray(labels))
    calibrator = fitted.calibrated_classifiers_[0].calibrators[0]
    if method == "platt":  # sklearn's sigmoid: 1 / (1 + exp(a * z + b))
        slope, intercept = -float(calibrator.a_), -float(calibrator.b_)
    else:  # sklearn's binary temperature scaling: softmax of beta * (-z, z), so sigmoid(2 beta z)
        slope, intercept = 2 * float(calibrator.beta_), 0.0
    if not slope > 0:
        raise CannotCalibrate(
            f"Calibration ({method}) fitted a slope of {slope + 0.0:.3g}: the model's scores "
            "do not rise with the share of not-allowed ads on validation, so no increasing map "
            "calibrates them. Look at its evaluation (ROC-AUC), or pass calibration=none to "
            "evaluate it uncalibrated.")
    return Calibration(method, slope, intercept)


def cross_fitted(labels, probabilities, method: str) -> np.ndarray:
    """Each probability calibrated by a fit on the other folds (stratified): calibrated
    figures on data the calibration was not fitted on."""
    labels, probabilities = np.asarray(labels), np.asarray(probabilities, dtype=np.float64)
    if method == "none":
        return probabilities
    # Each fit needs 2 images of each class besides those its fold holds out.
    folds = min(FOLDS, _require_of_each_class(labels, 4) // 2)
    _require_varying(probabilities)
    return cross_val_predict(_calibrated_scores(method), _column(probabilities), labels,
                             cv=StratifiedKFold(folds, shuffle=True, random_state=0),
                             method="predict_proba")[:, 1]


class _RawScores(ClassifierMixin, BaseEstimator):
    """The model's scores as a scikit-learn classifier of their one column: the logit of the
    raw probability is its decision function. Nothing to fit."""

    def fit(self, X, y=None):
        self.classes_ = np.array([0, 1])
        return self

    def decision_function(self, X):
        return logit(np.asarray(X)[:, 0])

    def predict(self, X):
        return (self.decision_function(X) >= 0).astype(int)


def _calibrated_scores(method: str) -> CalibratedClassifierCV:
    # A frozen estimator's scores are the same in every fold: cv only has to be valid (2 folds
    # need 2 images of each class; fewer are refused before).
    return CalibratedClassifierCV(FrozenEstimator(_RawScores().fit(None)), cv=2,
                                  method={"platt": "sigmoid", "temperature": "temperature"}[method])


def _require_of_each_class(labels, least: int) -> int:
    """The fewest images of one class; refused below `least`."""
    fewest = int(np.bincount(np.asarray(labels, dtype=int), minlength=2).min())
    if fewest < least:
        raise CannotCalibrate(f"Calibration needs at least {least} images of each class in "
                              f"validation (it has {fewest}): add images, raise val_fraction, or "
                              "pass calibration=none.")
    return fewest


def _require_varying(probabilities) -> None:
    """Refused when every image has the same score (after the clip to [EPSILON, 1 - EPSILON]):
    any fit would be arbitrary, one method accepting what the other refuses."""
    z = logit(probabilities)
    if z.size and z.min() == z.max():
        raise CannotCalibrate(
            f"Calibration needs scores that differ: the model gave every validation image the "
            f"same probability ({float(sigmoid(z[0])):.4g}), so it separates nothing; look at its "
            "training (loss curves, weights), or pass calibration=none.")


def _column(probabilities) -> np.ndarray:
    return np.asarray(probabilities, dtype=np.float64).reshape(-1, 1)
