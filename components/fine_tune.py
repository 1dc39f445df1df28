from kfp.dsl import HTML, Dataset, Input, Metrics, Model, Output


def fine_tune(
    head_model: Input[Model],
    train: Input[Dataset],
    validation: Input[Dataset],
    epochs: int,
    learning_rate: float,
    unfreeze: str,
    batch_size: int,
    rotation_degrees: float,
    width_shift: float,
    height_shift: float,
    shear_degrees: float,
    zoom: float,
    horizontal_flip: bool,
    class_weighting: str,
    class_weight_minority_share: float,
    early_stopping_patience: int,
    reduce_lr_patience: int,
    reduce_lr_factor: float,
    mixed_precision: bool,
    xla: bool,
    seed: int,
    checkpoint_root: str,
    require_gpu: bool,
    model: Output[Model],
    metrics: Output[Metrics],
    report: Output[HTML],
):
    """Phase 2: the base unfrozen (BatchNorm kept in inference mode), a low learning rate,
    epoch numbers continuing from the head phase."""
    values = dict(locals())  # first: this component's parameters, nothing else yet
    from admod import logs, steps, training
    from admod.errors import exit_on_user_error

    logs.setup()
    # Training state is keyed on this step's output: unique to the run, the same on its retries.
    values["state_key"] = model.uri
    summary = exit_on_user_error(
        steps.fine_tune_step, head_dir=head_model.path, train_dir=train.path,
        val_dir=validation.path, model_dir=model.path, report_path=report.path,
        unfreeze=unfreeze, options=training.TrainingOptions.from_parameters(values))
    model.metadata.update(summary)
    # tensorboard --logdir it
    model.metadata["tensorboard_logdir"] = training.tensorboard_logdir(f"{model.uri}/tensorboard")
    for name in steps.PHASE_METRICS:
        metrics.log_metric(name, summary[name])
