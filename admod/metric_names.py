"""The names of the figures admod reports: one definition each, used by the steps, the reports,
the local run's summary, Vertex AI and the experiment log."""

# Scores of a model on held-out images (admod.evaluation.scores), in the order reports show them.
SCORES = ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "brier", "ece")
# Those where higher is better: the ones blessing may gate on.
GATING_METRICS = SCORES[:6]
# A training phase's figures (admod.training.phase_summary), logged as each step's metrics.
PHASE_METRICS = ("epochs_run", "best_epoch", "best_val_loss", "best_val_accuracy", "best_val_auc")
# The few a summary line shows: the local run's, a pushed version's metadata.
HEADLINE = ("accuracy", "precision", "recall", "f1", "roc_auc")
