from kfp import dsl
from kfp.dsl import HTML, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from admod.components.image import IMAGE


@dsl.component(base_image=IMAGE)
def evaluate(
    model: Input[Model],
    validation: Input[Dataset],
    batch_size: int,
    min_accuracy: float,
    min_auc: float,
    metrics: Output[Metrics],
    classification: Output[ClassificationMetrics],
    report: Output[HTML],
) -> bool:
    """Scores the validation images and returns whether the model is blessed for push.

    The decision is the single, default `Output` parameter: kfp.local resolves conditions on
    that name only."""
    from admod import logs, steps
    from admod.defaults import CLASS_NAMES
    from admod.errors import exit_on_user_error

    logs.setup()
    result = exit_on_user_error(
        steps.evaluate_step, model.path, validation.path, metrics.path, report.path,
        batch_size, {"accuracy": min_accuracy, "auc": min_auc})
    scores = result["scores"]
    for name, value in scores.items():
        if isinstance(value, float):
            metrics.log_metric(name, value)
    classification.log_confusion_matrix(list(CLASS_NAMES), scores["confusion_matrix"])
    roc = result["roc"]
    classification.log_roc_curve(roc["fpr"], roc["tpr"], roc["thresholds"])
    metrics.metadata["blessed"] = result["blessed"]
    metrics.metadata["reasons"] = result["reasons"]
    return result["blessed"]
