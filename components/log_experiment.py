from kfp.dsl import Artifact, Input, Metrics, Model


def log_experiment(
    parameters: Input[Artifact],
    evaluation: Input[Metrics],
    head_model: Input[Model],
    fine_tune_model: Input[Model],
    experiment: str,
    vertex_project: str,
    vertex_location: str,
    vertex_tensorboard: str,
    run_id: str,
):
    """Logs the run to the Vertex AI Experiment `experiment`: every parameter, the final
    evaluation and training figures, and (with vertex_tensorboard) the per-epoch curves."""
    values = dict(locals())  # first: this component's parameters, nothing else yet
    from admod import logs, options, steps, vertex_targets
    from admod.errors import exit_on_user_error

    logs.setup()
    experiment_options = exit_on_user_error(options.from_parameters, values,
                                            options.ExperimentOptions, inputs=("run_id",))
    target = exit_on_user_error(vertex_targets.ExperimentTarget.from_options, experiment_options)
    exit_on_user_error(
        steps.log_experiment_step, parameters_path=parameters.path,
        evaluation_path=evaluation.path, head_dir=head_model.path,
        fine_tune_dir=fine_tune_model.path, target=target, run_id=run_id)
