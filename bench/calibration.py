"""The calibration methods compared on runs' own scores: ECE of the raw score, and of temperature
and Platt scaling, each cross-fitted (every image calibrated by a fit on the other folds, as
evaluate measures it), on the headline images of each run given.

    .venv/bin/python bench/calibration.py RUN_DIR [RUN_DIR ...]

RUN_DIR is a local run's pipeline folder (<pipeline root>/runs/<started>-<id>/<pipeline>-...),
the one whose evaluate/ holds `predictions` (CSV: label, raw_probability).
"""

import argparse
import glob
import os

import pandas as pd

from admod import calibration, evaluation

METHODS = ("temperature", "platt")


def compare(predictions_csv: str) -> dict:
    scored = pd.read_csv(predictions_csv)
    labels, raw = scored["label"].to_numpy(), scored["raw_probability"].to_numpy()
    row = {"images": len(scored), "split": scored["split"].iloc[0],
           "raw": evaluation.expected_calibration_error(labels, raw)}
    for method in METHODS:
        held_out = calibration.cross_fitted(labels, raw, method)
        row[method] = evaluation.expected_calibration_error(labels, held_out)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    args = parser.parse_args()
    rows = []
    for run in args.runs:
        found = glob.glob(os.path.join(run, "**", "evaluate", "predictions"), recursive=True)
        if len(found) != 1:
            parser.error(f"{run}: expected one evaluate/predictions under it, found {len(found)}")
        rows.append({"run": run, **compare(found[0])})
    table = pd.DataFrame(rows)
    print("ECE (10 bins) on the headline images, calibrations cross-fitted over 5 folds:")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
