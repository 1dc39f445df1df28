from kfp.dsl import Dataset, Markdown, Metrics, Output


def split(
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
    """Checks every image under data_root's class folders and writes stratified, stable splits
    as sharded TFRecords, with a manifest of every file and a report."""
    from admod import logs, split as split_lib, steps
    from admod.errors import exit_on_user_error

    logs.setup()
    config = split_lib.SplitConfig(val_fraction=val_fraction, test_fraction=test_fraction,
                                   seed=seed, min_side=min_image_side, max_pixels=max_image_pixels)
    out_dirs = {"train": train.path, "validation": validation.path, "test": test.path}
    figures = exit_on_user_error(steps.split_step, data_root, out_dirs, manifest.path,
                                 report.path, config)
    for name, value in figures.items():
        metrics.log_metric(name, value)
    for name, artifact in (("train", train), ("validation", validation), ("test", test)):
        artifact.metadata.update({k: v for k, v in figures.items() if k.startswith(name)})
    manifest.metadata["listed"] = figures["listed"]
