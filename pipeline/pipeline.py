"""The admod DAG: check-parameters -> split -> train-head -> fine-tune -> evaluate -> push,
and, with an experiment, log-experiment after evaluate.

The split is four stages: list-images, then check-images over split_workers partitions in
parallel (dsl.ParallelFor), then merge-bucket over the 16 content-hash buckets in parallel
(each reads its bucket of every partition), then split, which writes the manifest and the
report (dsl.Collected); for a Kubeflow Pipelines backend before 2.14, which cannot collect a
loop's artifacts, one task does it all with split_workers processes.

Every parameter, its default and its description come from its step's options (admod.options);
each step takes the parameters of the options it builds. Each step's resources, GPUs and caching
are its policy in platform.STEPS.
"""

import functools

from kfp import dsl

from admod import components, options
from admod.options import DEFAULTS as d
from admod.pipeline import task_names as names
from admod.pipeline.platform import Platform
from admod.defaults import SPLIT_BUCKETS as BUCKET_COUNT

# The merge's buckets as loop items: strings, as KFP types every ParallelFor item.
BUCKETS = [f"{bucket:02d}" for bucket in range(BUCKET_COUNT)]

PIPELINE_NAME = "admod-resnet50-ad-moderation"
DESCRIPTION = "Fine-tunes ResNet50 into an allowed / not-allowed ad classifier."


def build(platform: Platform, image: str = components.DEFAULT_IMAGE):
    """The pipeline, its steps running in `image`, with `platform`'s resources, GPUs and
    retries on its steps."""
    c = components.build(image)

    def admod_pipeline(
        data_root: str,
        registry_root: str,
        val_fraction: float = d.val_fraction,
        test_fraction: float = d.test_fraction,
        seed: int = d.seed,
        min_image_side: int = d.min_image_side,
        max_image_pixels: int = d.max_image_pixels,
        split_workers: int = d.split_workers,
        image_size: int = d.image_size,
        batch_size: int = d.batch_size,
        weights: str = d.weights,
        allow_random_init: bool = d.allow_random_init,
        require_gpu: bool = d.require_gpu,
        head_epochs: int = d.head_epochs,
        head_learning_rate: float = d.head_learning_rate,
        fine_tune_epochs: int = d.fine_tune_epochs,
        fine_tune_learning_rate: float = d.fine_tune_learning_rate,
        unfreeze: str = d.unfreeze,
        early_stopping_patience: int = d.early_stopping_patience,
        rotation_degrees: float = d.rotation_degrees,
        width_shift: float = d.width_shift,
        height_shift: float = d.height_shift,
        shear_degrees: float = d.shear_degrees,
        zoom: float = d.zoom,
        horizontal_flip: bool = d.horizontal_flip,
        class_weighting: str = d.class_weighting,
        class_weight_minority_share: float = d.class_weight_minority_share,
        reduce_lr_patience: int = d.reduce_lr_patience,
        reduce_lr_factor: float = d.reduce_lr_factor,
        mixed_precision: bool = d.mixed_precision,
        xla: bool = d.xla,
        checkpoint_root: str = d.checkpoint_root,
        threshold_rule: str = d.threshold_rule,
        threshold_target: float = d.threshold_target,
        calibration: str = d.calibration,
        min_accuracy: float = d.min_accuracy,
        min_auc: float = d.min_auc,
        min_precision: float = d.min_precision,
        min_recall: float = d.min_recall,
        gating_metric: str = d.gating_metric,
        max_regression: float = d.max_regression,
        champion_rule: str = d.champion_rule,
        slice_gate: bool = d.slice_gate,
        min_slice_size: int = d.min_slice_size,
        max_ece: float = d.max_ece,
        vertex_model: str = d.vertex_model,
        vertex_project: str = d.vertex_project,
        vertex_location: str = d.vertex_location,
        vertex_serving_image: str = d.vertex_serving_image,
        vertex_default_alias: bool = d.vertex_default_alias,
        experiment: str = d.experiment,
        vertex_tensorboard: str = d.vertex_tensorboard,
    ):
        arguments = functools.partial(_arguments, locals())
        place = platform.place
        check_task = place(c.check_parameters(**arguments(*options.STEP_OPTIONS)),
                           names.CHECK_PARAMETERS)

        # The split: list (never cached: it notices new files), check the partitions in
        # parallel, merge each of the 16 content-hash buckets in parallel, then write the
        # manifest and report. A partition is checked again only when its files changed (its
        # key holds their fingerprint), a bucket merged again only when a partition was, and
        # training only when a bucket was. Where the backend cannot collect a loop's
        # artifacts, all of it in one task, never cached.
        if platform.fan_in:
            list_task = place(c.list_images(data_root=data_root,
                                            **arguments(options.ListingOptions)), names.LIST_IMAGES)
            list_task.after(check_task)
            with dsl.ParallelFor(list_task.output) as partition:
                check_images_task = place(c.check_images(
                    data_root=data_root, partition=partition,
                    **arguments(options.ListingOptions, options.ImageRules)), names.CHECK_IMAGES)
            # An artifact, not the collected list itself: a loop task's parameters from
            # another task are replaced by the loop item under kfp.local (docs/scaling.md).
            parts = place(c.gather_parts(parts=dsl.Collected(check_images_task.outputs["Output"]),
                                         **arguments(options.SplitOptions)),
                          names.GATHER_PARTS).outputs["gathered"]
            with dsl.ParallelFor(BUCKETS) as bucket:
                merge_task = place(c.merge_bucket(parts=parts, bucket=bucket,
                                                  **arguments(options.SplitOptions)),
                                   names.MERGE_BUCKET)
            split_task = place(c.split(merged=dsl.Collected(merge_task.outputs[names.MERGED]),
                                       parts=parts, data_root=data_root,
                                       **arguments(options.SplitOptions, options.ImageRules)),
                               names.SPLIT)
        else:
            split_task = place(c.split_in_one_task(
                data_root=data_root, **arguments(options.SplitOptions, options.ImageRules,
                                                 options.ListingOptions)), names.SPLIT_IN_ONE_TASK)
            split_task.after(check_task)
        splits = {"train": split_task.outputs["train"],
                  "validation": split_task.outputs["validation"]}

        head_task = place(c.train_head(**splits, **arguments(options.HeadOptions,
                                                             options.TrainingOptions)),
                          names.TRAIN_HEAD)

        fine_tune_task = place(c.fine_tune(head_model=head_task.outputs[names.MODEL], **splits,
                                           **arguments(options.FineTuneOptions,
                                                       options.TrainingOptions)), names.FINE_TUNE)

        evaluate_task = place(c.evaluate(model=fine_tune_task.outputs[names.MODEL],
                                         validation=split_task.outputs["validation"],
                                         test=split_task.outputs["test"],
                                         manifest=split_task.outputs[names.MANIFEST],
                                         registry_root=registry_root,
                                         **arguments(options.EvaluationOptions)), names.EVALUATE)

        with dsl.If(evaluate_task.outputs[names.DECISION] == True, name="blessed"):  # noqa: E712
            place(c.push(model=fine_tune_task.outputs[names.MODEL],
                         evaluation=evaluate_task.outputs[names.METRICS], **splits,
                         registry_root=registry_root, run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
                         **arguments(options.VertexModelOptions)), names.PUSH)

        with dsl.If(experiment != "", name="experiment-set"):
            place(c.log_experiment(parameters=check_task.outputs["checked"],
                                   evaluation=evaluate_task.outputs[names.METRICS],
                                   head_model=head_task.outputs[names.MODEL],
                                   fine_tune_model=fine_tune_task.outputs[names.MODEL],
                                   run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
                                   **arguments(options.ExperimentOptions)), names.LOG_EXPERIMENT)

    # The run form's descriptions, from the options (KFP reads them from the docstring).
    admod_pipeline.__doc__ = options.describe(DESCRIPTION)
    return dsl.pipeline(name=PIPELINE_NAME, description=DESCRIPTION)(admod_pipeline)


def _arguments(scope: dict, *classes) -> dict:
    """The pipeline parameters of the options `classes`, from `scope` (the pipeline function's
    locals): what a step that builds those options takes."""
    names = set().union(*(options.parameter_fields(cls) for cls in classes))
    missing = sorted(names - set(scope))
    if missing:
        raise TypeError(f"{', '.join(missing)}: not in the pipeline function's signature: add "
                        "each with its type and default d.<name>.")
    return {name: scope[name] for name in names}
