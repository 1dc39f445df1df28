from kfp.dsl import HTML, Dataset, Input, Metrics, Model, Output


def fine_tune(
    head_model: Input[Model],
    train: Input[Dataset],
    validation: Input[Dataset],
    fine_tune_epochs: int,
    fine_tune_learning_rate: float,
    unfreeze: str,
    batch_size: int,
    require_gpu: bool,
    seed: int,
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
    checkpoint_root: str,
    model: Output[Model],
    metrics: Output[Metrics],
    report: Output[HTML],
):
    """Phase 2: the base unfrozen (BatchNorm kept in inference mode), a low learning rate,
    epoch numbers continuing from the head phase."""
    values = dict(locals())  # first: this component's parameters, nothing else yet
    from admod import logs, options, steps
    from admod.errors import exit_on_user_error

    logs.setup()
    fine_tune_options, shared = exit_on_user_error(
        options.from_parameters, values, options.FineTuneOptions, options.TrainingOptions)
    # Training state is keyed on this step's output: unique to the run, the same on its retries.
    summary = exit_on_user_error(
        steps.fine_tune_step, head_dir=head_model.path, train_dir=train.path,
        val_dir=validation.path, model_dir=model.path, report_path=report.path,
        unfreeze=fine_tune_options.unfreeze,
        options=fine_tune_options.training_options(shared, state_key=model.uri))
    metadata, figures = steps.phase_outputs(summary, model.uri)
    model.metadata.update(metadata)
    for name, value in figures.items():
        metrics.log_metric(name, value)
