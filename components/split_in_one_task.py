from kfp.dsl import Dataset, Markdown, Metrics, Output


def split_in_one_task(
    data_root: str,
    split_workers: int,
    min_image_side: int,
    max_image_pixels: int,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    train: Output[Dataset],
    validation: Output[Dataset],
    test: Output[Dataset],
    manifest: Output[Dataset],
    report: Output[Markdown],
    metrics: Output[Metrics],
):
    """The whole split in one task, for Kubeflow Pipelines backends before 2.14 (which cannot
    collect a ParallelFor's artifacts): listed, checked by split_workers processes in this pod,
    merged; the same outputs as the fanned-out split."""
    values = dict(locals())  # first: this component's parameters, nothing else yet
    from admod import logs, options, split_steps
    from admod.errors import exit_on_user_error

    logs.setup()
    split_options, rules, listing = exit_on_user_error(
        options.from_parameters, values, options.SplitOptions, options.ImageRules,
        options.ListingOptions, inputs=("data_root",))
    out_dirs = {"train": train.path, "validation": validation.path, "test": test.path}
    figures = exit_on_user_error(split_steps.split_step, data_root=data_root, out_dirs=out_dirs,
                                 manifest_path=manifest.path, report_path=report.path,
                                 options=split_options, rules=rules,
                                 partitions=listing.split_workers)
    split_steps.publish_split_figures(figures, metrics,
                                {"train": train, "validation": validation, "test": test}, manifest)
