from kfp.dsl import HTML, Dataset, Input, Metrics, Model, Output


def train_head(
    train: Input[Dataset],
    validation: Input[Dataset],
    image_size: int,
    weights: str,
    allow_random_init: bool,
    head_epochs: int,
    head_learning_rate: float,
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
    """Phase 1: ResNet50 frozen, the method's head trained with early stopping."""
    values = dict(locals())  # first: this component's parameters, nothing else yet
    from admod import logs, options, steps
    from admod.errors import exit_on_user_error

    logs.setup()
    head, shared = exit_on_user_error(options.from_parameters, values, options.HeadOptions,
                                      options.TrainingOptions)
    # Training state is keyed on this step's output: unique to the run, the same on its retries.
    summary = exit_on_user_error(
        steps.train_head_step, train_dir=train.path, val_dir=validation.path,
        model_dir=model.path, report_path=report.path, image_size=head.image_size,
        weights=head.weights, options=head.training_options(shared, state_key=model.uri),
        allow_random_init=head.allow_random_init)
    metadata, figures = steps.phase_outputs(summary, model.uri)
    model.metadata.update(metadata)
    for name, value in figures.items():
        metrics.log_metric(name, value)
