from kfp import dsl
from kfp.dsl import Input, Metrics, Model

from admod.components.image import IMAGE


@dsl.component(base_image=IMAGE)
def push(model: Input[Model], evaluation: Input[Metrics], registry_root: str) -> str:
    """Publishes the blessed model and its metrics as a new version under registry_root."""
    import tempfile

    from admod import logs, steps
    from admod.errors import exit_on_user_error

    logs.setup()
    with tempfile.TemporaryDirectory() as staging:
        return exit_on_user_error(steps.push_step, model.path, evaluation.path, registry_root,
                                  staging)
