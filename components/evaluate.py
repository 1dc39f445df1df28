from kfp.dsl import HTML, ClassificationMetrics, Dataset, Input, Metrics, Model, Output


def evaluate(
    model: Input[Model],
    validation: Input[Dataset],
    test: Input[Dataset],
    manifest: Input[Dataset],
    registry_root: str,
    batch_size: int,
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
    require_gpu: bool,
    metrics: Output[Metrics],
    classification: Output[ClassificationMetrics],
    predictions: Output[Dataset],
    report: Output[HTML],
) -> bool:
    """Scores the held-out images, calibrates the score on validation, compares with the
    registry's champion and returns whether the model is blessed for push.

    The decision is the single, default `Output` parameter: kfp.local resolves conditions on
    that name only."""
    values = dict(locals())  # first: this component's parameters, nothing else yet
    from admod import logs, options, steps
    from admod.defaults import CLASS_NAMES
    from admod.errors import exit_on_user_error

    logs.setup()
    evaluation = exit_on_user_error(options.from_parameters, values, options.EvaluationOptions,
                                    inputs=("registry_root",))
    result = exit_on_user_error(
        steps.evaluate_step, model_dir=model.path, val_dir=validation.path, test_dir=test.path,
        registry_root=registry_root, metrics_path=metrics.path,
        predictions_path=predictions.path, report_path=report.path, options=evaluation,
        manifest_path=manifest.path)
    metadata, figures = steps.evaluation_outputs(result)
    for name, value in figures.items():
        metrics.log_metric(name, value)
    metrics.metadata.update(metadata)
    classification.log_confusion_matrix(list(CLASS_NAMES), result.scores["confusion_matrix"])
    classification.log_roc_curve(result.roc["fpr"], result.roc["tpr"], result.roc["thresholds"])
    predictions.metadata["split"] = result.split
    return result.blessed
