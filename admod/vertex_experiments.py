"""One pipeline run as a run of a Vertex AI Experiment: its parameters and final metrics, and,
with a Vertex TensorBoard, its per-epoch curves as the run's time series.

Goes through google-cloud-aiplatform's experiment tracking (aiplatform.start_run and the
log_* calls), so the console's Experiments page compares admod runs like any others. Logging
again for the same run (a retried step) resumes the run and overwrites the same values.
"""

import logging
import re

import pandas as pd

from admod.vertex_targets import ExperimentTarget

log = logging.getLogger(__name__)
# The curves logged per epoch (when present in the history)
CURVES = ("loss", "accuracy", "auc", "val_loss", "val_accuracy", "val_auc", "learning_rate")


def run_name(experiment: str, run_id: str) -> str:
    """The experiment run's name for a pipeline run id: lowercase, digits and hyphens, and
    short enough for the run's resource id ("<experiment>-<run>", 128 at most)."""
    name = re.sub(r"[^a-z0-9-]+", "-", run_id.lower()).strip("-")
    return name[:127 - len(experiment)].rstrip("-") or "run"


def _loggable(value):
    if isinstance(value, bool):
        return str(value).lower()
    return value if isinstance(value, (int, float, str)) else str(value)


def log_run(target: ExperimentTarget, run_id: str, params: dict, metrics: dict,
            history: pd.DataFrame | None = None, **init) -> str:
    """Logs one run (parameters, final metrics and, with a TensorBoard, `history`'s curves per
    epoch); returns the run's name. `init` goes to aiplatform.init (credentials, ...)."""
    from google.cloud import aiplatform

    aiplatform.init(project=target.project, location=target.location,
                    experiment=target.experiment,
                    experiment_tensorboard=target.tensorboard or False, **init)
    from google.cloud.aiplatform_v1.types import Execution

    name = run_name(target.experiment, run_id)
    earlier = aiplatform.ExperimentRun.get(name, experiment=target.experiment)
    # A retry after a complete attempt writes the curves no second time; after one that died
    # midway, it writes them again (Vertex keeps the points of each step).
    curves_written = earlier is not None and earlier.state == Execution.State.COMPLETE
    with aiplatform.start_run(name, resume=earlier is not None) as run:
        run.log_params({key: _loggable(value) for key, value in params.items()})
        run.log_metrics({key: float(value) for key, value in metrics.items()})
        if target.tensorboard and history is not None and not curves_written:
            for row in history.to_dict("records"):
                run.log_time_series_metrics(
                    {key: float(row[key]) for key in CURVES if pd.notna(row.get(key))},
                    step=int(row["epoch"]))
    log.info("logged run %s to experiment %s", name, target.experiment)
    return name
