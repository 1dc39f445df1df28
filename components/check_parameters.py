from kfp.dsl import Artifact, Output


def check_parameters(
    data_root: str,
    registry_root: str,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    min_image_side: int,
    max_image_pixels: int,
    split_workers: int,
    image_size: int,
    batch_size: int,
    weights: str,
    allow_random_init: bool,
    require_gpu: bool,
    head_epochs: int,
    head_learning_rate: float,
    fine_tune_epochs: int,
    fine_tune_learning_rate: float,
    unfreeze: str,
    early_stopping_patience: int,
    rotation_degrees: float,
    width_shift: float,
    height_shift: float,
    shear_degrees: float,
    zoom: float,
    horizontal_flip: bool,
    class_weighting: str,
    class_weight_minority_share: float,
    reduce_lr_patience: int,
    reduce_lr_factor: float,
    mixed_precision: bool,
    xla: bool,
    checkpoint_root: str,
    threshold_rule: str,
    threshold_target: float,
    calibration: str,
    min_accuracy: float,
    min_auc: float,
    min_precision: float,
    min_recall: float,
    gating_metric: str,
    max_regression: float,
    champion_rule: str,
    slice_gate: bool,
    min_slice_size: int,
    max_ece: float,
    vertex_model: str,
    vertex_project: str,
    vertex_location: str,
    vertex_serving_image: str,
    vertex_default_alias: bool,
    experiment: str,
    vertex_tensorboard: str,
    checked: Output[Artifact],
):
    """The pipeline's first step, on CPU: every parameter's range and choices checked at once,
    a weights file's existence, and the data, registry and pipeline roots reached from the pod
    (the pipeline root: this step's own output folder), so that a mistake ends the run in one
    sentence before any GPU starts (for runs started from the UI, the API or a schedule; the
    command line checks the parameters before it submits). `checked` is every parameter's
    value, as JSON."""
    values = dict(locals())  # first: this component's parameters, nothing else yet
    values.pop("checked")
    from admod import check_step, logs
    from admod.errors import exit_on_user_error

    logs.setup()
    exit_on_user_error(check_step.check_parameters_step, values=values, checked_path=checked.path,
                       pipeline_root=checked.uri.rsplit("/", 1)[0])
