from kfp.dsl import Dataset, Input, Metrics, Model, Output


def push(
    model: Input[Model],
    evaluation: Input[Metrics],
    train: Input[Dataset],
    validation: Input[Dataset],
    registry_root: str,
    run_id: str,
    published: Output[Model],
):
    """Publishes the blessed model (SavedModel, .keras, metrics, model card) as a new version
    under registry_root and makes it the champion. `published` is that registry version (its
    URI is the version's folder), so the UI's lineage links this run to it."""
    import tempfile

    from admod import logs, steps
    from admod.errors import exit_on_user_error

    logs.setup()
    with tempfile.TemporaryDirectory() as staging:
        version = exit_on_user_error(
            steps.push_step, model_dir=model.path, evaluation_path=evaluation.path,
            train_dir=train.path, val_dir=validation.path, registry_root=registry_root,
            run_id=run_id, staging_dir=staging)
    published.uri = version.pop("uri")
    published.metadata.update(version)
