from typing import List

from kfp.dsl import Artifact, Output


def gather_parts(
    parts: List[str],
    val_fraction: float,
    test_fraction: float,
    seed: int,
    gathered: Output[Artifact],
):
    """The checked partitions' uris (check-images' returns, collected) and their near-copy
    groups, each group's split decided here, as one small JSON artifact that every
    merge-bucket task takes."""
    values = dict(locals())  # first: this component's parameters, nothing else yet
    from admod import logs, options, split_tasks
    from admod.errors import exit_on_user_error

    logs.setup()
    split_options = exit_on_user_error(options.from_parameters, values, options.SplitOptions,
                                       inputs=("parts",))
    gathered.metadata.update(exit_on_user_error(
        split_tasks.gather_parts_step, part_uris=parts, gathered_path=gathered.path,
        options=split_options))
