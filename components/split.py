from typing import List

from kfp.dsl import Dataset, Input, Markdown, Metrics, Output


def split(
    parts: Input[List[Dataset]],
    data_root: str,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    min_image_side: int,
    max_image_pixels: int,
    train: Output[Dataset],
    validation: Output[Dataset],
    test: Output[Dataset],
    manifest: Output[Dataset],
    report: Output[Markdown],
    metrics: Output[Metrics],
):
    """The split's last stage: the checked partitions merged bucket by bucket, a process per
    CPU (duplicates kept once across all of them, label conflicts excluded) into stratified,
    stable splits as sharded TFRecords, with a manifest of every file and a report."""
    values = dict(locals())  # first: this component's parameters, nothing else yet
    from admod import logs, options, split_steps
    from admod.errors import exit_on_user_error

    logs.setup()
    split_options, rules = exit_on_user_error(options.from_parameters, values,
                                              options.SplitOptions, options.ImageRules,
                                              inputs=("data_root",))
    out_dirs = {"train": train.path, "validation": validation.path, "test": test.path}
    figures = exit_on_user_error(split_steps.merge_split_step, part_dirs=[p.path for p in parts],
                                 data_root=data_root, out_dirs=out_dirs,
                                 manifest_path=manifest.path, report_path=report.path,
                                 options=split_options, rules=rules)
    split_steps.publish_split_figures(figures, metrics,
                                {"train": train, "validation": validation, "test": test}, manifest)
