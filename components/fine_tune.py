from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Metrics, Model, Output

from admod.components.image import IMAGE


@dsl.component(base_image=IMAGE)
def fine_tune(
    head_model: Input[Model],
    train: Input[Dataset],
    validation: Input[Dataset],
    batch_size: int,
    epochs: int,
    learning_rate: float,
    unfreeze: str,
    rotation_degrees: float,
    width_shift: float,
    height_shift: float,
    shear_degrees: float,
    zoom: float,
    horizontal_flip: bool,
    class_weighting: str,
    early_stopping_patience: int,
    seed: int,
    model: Output[Model],
    metrics: Output[Metrics],
    report: Output[HTML],
):
    """Phase 2: the base unfrozen (BatchNorm kept in inference mode), a low learning rate,
    epoch numbers continuing from the head phase."""
    from admod import logs, steps
    from admod.augment import AugmentConfig
    from admod.errors import exit_on_user_error

    logs.setup()
    augment = AugmentConfig(rotation_degrees, width_shift, height_shift, shear_degrees, zoom,
                            horizontal_flip)
    summary = exit_on_user_error(
        steps.fine_tune_step, head_model.path, train.path, validation.path, model.path,
        report.path, batch_size, epochs, learning_rate, unfreeze, augment, seed,
        class_weighting, early_stopping_patience)
    model.metadata.update(summary)
    for name in ("epochs_run", "best_epoch", "best_val_loss", "best_val_accuracy", "best_val_auc"):
        metrics.log_metric(name, summary[name])
