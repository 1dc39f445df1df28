from kfp.dsl import Artifact, Dataset, Input, Output


def merge_bucket(
    parts: Input[Artifact],
    bucket: str,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    train: Output[Dataset],
    validation: Output[Dataset],
    test: Output[Dataset],
    merged: Output[Artifact],
):
    """One of the split's 16 buckets (by content-hash prefix) across every checked partition:
    duplicates kept once, label conflicts excluded, its images written to its shards per split.
    Reads only its bucket of each partition (gs:// or local). Cached while the partitions are."""
    values = dict(locals())  # first: this component's parameters, nothing else yet
    from admod import logs, options, split_tasks
    from admod.errors import exit_on_user_error

    logs.setup()
    split_options = exit_on_user_error(options.from_parameters, values, options.SplitOptions,
                                       inputs=("bucket",))
    part_uris, grouped = split_tasks.read_gathered(parts.path)
    outputs = {"train": train, "validation": validation, "test": test}
    figures = exit_on_user_error(split_tasks.merge_bucket_step, part_uris=part_uris,
                                 bucket=bucket,
                                 out_dirs={name: a.path for name, a in outputs.items()},
                                 out_uris={name: a.uri for name, a in outputs.items()},
                                 result_dir=merged.path, options=split_options,
                                 grouped=grouped)
    merged.metadata.update(figures)
