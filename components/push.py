from kfp.dsl import Dataset, Input, Metrics, Model, Output


def push(
    model: Input[Model],
    evaluation: Input[Metrics],
    train: Input[Dataset],
    validation: Input[Dataset],
    registry_root: str,
    run_id: str,
    vertex_model: str,
    vertex_project: str,
    vertex_location: str,
    vertex_serving_image: str,
    vertex_default_alias: bool,
    published: Output[Model],
):
    """Publishes the blessed model (SavedModel, .keras, metrics, model card) as a new version
    under registry_root and makes it the champion; with vertex_model, also as a version of that
    Vertex AI model (evaluation imported, `champion` alias). `published` keeps the URI the
    backend gave it (Kubeflow's launcher refuses an output outside the pipeline root); its
    metadata `registry_uri` and its file `version.json` name the registry version."""
    values = dict(locals())  # first: this component's parameters, nothing else yet
    import json
    import os
    import tempfile

    from admod import logs, options, steps, vertex_targets
    from admod.errors import exit_on_user_error

    logs.setup()
    vertex_options = exit_on_user_error(options.from_parameters, values,
                                        options.VertexModelOptions,
                                        inputs=("registry_root", "run_id"))
    vertex = None
    if vertex_options.vertex_model:
        vertex = exit_on_user_error(vertex_targets.ModelTarget.from_options, vertex_options)
    with tempfile.TemporaryDirectory() as staging:
        version = exit_on_user_error(
            steps.push_step, model_dir=model.path, evaluation_path=evaluation.path,
            train_dir=train.path, val_dir=validation.path, registry_root=registry_root,
            run_id=run_id, staging_dir=staging, vertex=vertex)
    version["registry_uri"] = version.pop("uri")
    published.metadata.update(version)
    os.makedirs(published.path, exist_ok=True)
    with open(os.path.join(published.path, "version.json"), "w") as f:
        json.dump(version, f, indent=1)
