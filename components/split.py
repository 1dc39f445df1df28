from typing import List

from kfp.dsl import Artifact, Dataset, Input, Markdown, Metrics, Output


def split(
    merged: Input[List[Artifact]],
    parts: Input[Artifact],
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
    """The split's last stage: the 16 merged buckets' results and the partitions' excluded
    files made into the manifest of every file and the report; train, validation and test
    each list their shards where the merge-bucket tasks wrote them (nothing copied)."""
    values = dict(locals())  # first: this component's parameters, nothing else yet
    from admod import logs, options, split_steps, split_tasks
    from admod.errors import exit_on_user_error

    logs.setup()
    split_options, rules = exit_on_user_error(options.from_parameters, values,
                                              options.SplitOptions, options.ImageRules,
                                              inputs=("data_root",))
    part_uris, grouped = split_tasks.read_gathered(parts.path)
    out_dirs = {"train": train.path, "validation": validation.path, "test": test.path}
    figures = exit_on_user_error(split_steps.finish_split_step,
                                 result_dirs=[m.path for m in merged], part_uris=part_uris,
                                 data_root=data_root, out_dirs=out_dirs,
                                 manifest_path=manifest.path, report_path=report.path,
                                 options=split_options, rules=rules, grouped=grouped)
    split_steps.publish_split_figures(figures, metrics,
                                {"train": train, "validation": validation, "test": test}, manifest)
