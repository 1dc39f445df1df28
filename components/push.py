from kfp.dsl import Dataset, Input, Metrics, Model


def push(
    model: Input[Model],
    evaluation: Input[Metrics],
    train: Input[Dataset],
    validation: Input[Dataset],
    registry_root: str,
    run_id: str,
) -> str:
    """Publishes the blessed model (SavedModel, .keras, metrics, model card) as a new version
    under registry_root and makes it the champion; returns the version's URI."""
    import tempfile

    from admod import logs, steps
    from admod.errors import exit_on_user_error

    logs.setup()
    with tempfile.TemporaryDirectory() as staging:
        return exit_on_user_error(steps.push_step, model.path, evaluation.path, train.path,
                                  validation.path, registry_root, run_id, staging)
