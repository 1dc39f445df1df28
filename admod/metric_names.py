"""The names of the figures admod reports: one definition each, used by the steps, the reports,
the local run's summary, Vertex AI and the experiment log."""

import math

# Scores of a model on held-out images (admod.evaluation.scores), in the order reports show them.
SCORES = ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "brier", "ece")
# Those that do not depend on the threshold: one value per model, whatever the operating point.
THRESHOLD_FREE = ("roc_auc", "pr_auc", "brier", "ece")
# Those where higher is better: the ones blessing may gate on.
GATING_METRICS = SCORES[:6]
# A training phase's figures (admod.training.phase_summary), logged as each step's metrics.
PHASE_METRICS = ("epochs_run", "best_epoch", "best_val_loss", "best_val_accuracy", "best_val_auc")
# The few a summary line shows: the local run's, a pushed version's metadata.
HEADLINE = ("accuracy", "precision", "recall", "f1", "roc_auc")


def threshold_text(threshold: float) -> str:
    """A threshold as every report, plot and summary shows it: four decimals, or as many
    significant digits as it takes for one within 0.001 of 0 or 1 not to read 0.0000 or 1.0000."""
    if threshold in (0, 1) or 0.001 <= threshold <= 0.999:
        return f"{threshold:.4f}"
    if threshold < 0.001:
        return f"{threshold:.3g}"
    return f"{threshold:.{3 + math.ceil(-math.log10(1 - threshold))}g}"
