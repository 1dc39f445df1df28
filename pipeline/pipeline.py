"""The admod DAG: check-parameters -> split -> train-head -> fine-tune -> evaluate -> (if blessed) push.

Every parameter defaults to the method's value (admod.defaults). Caching: split and evaluate
never (new images, a new champion), push never (it publishes); train-head and fine-tune may
reuse a result for identical inputs, which a fresh split never gives them.
"""

from kfp import dsl

from admod import defaults as d
from admod import components
from admod.pipeline.platform import Platform

PIPELINE_NAME = "admod-resnet50-ad-moderation"


def build(platform: Platform, image: str = components.DEFAULT_IMAGE):
    """The pipeline, its steps running in `image`, with `platform`'s resources, GPUs and
    retries on its steps."""
    c = components.build(image)

    @dsl.pipeline(name=PIPELINE_NAME,
                  description="Fine-tunes ResNet50 into an allowed / not-allowed ad classifier.")
    def admod_pipeline(
        data_root: str,
        registry_root: str,
        val_fraction: float = d.VAL_FRACTION,
        test_fraction: float = d.TEST_FRACTION,
        seed: int = d.SEED,
        min_image_side: int = d.MIN_IMAGE_SIDE,
        max_image_pixels: int = d.MAX_IMAGE_PIXELS,
        image_size: int = d.IMAGE_SIZE,
        batch_size: int = d.BATCH_SIZE,
        weights: str = d.WEIGHTS,
        allow_random_init: bool = d.ALLOW_RANDOM_INIT,
        require_gpu: bool = d.REQUIRE_GPU,
        head_epochs: int = d.HEAD_EPOCHS,
        head_learning_rate: float = d.HEAD_LEARNING_RATE,
        fine_tune_epochs: int = d.FINE_TUNE_EPOCHS,
        fine_tune_learning_rate: float = d.FINE_TUNE_LEARNING_RATE,
        unfreeze: str = d.UNFREEZE,
        early_stopping_patience: int = d.EARLY_STOPPING_PATIENCE,
        rotation_degrees: float = d.ROTATION_DEGREES,
        width_shift: float = d.WIDTH_SHIFT,
        height_shift: float = d.HEIGHT_SHIFT,
        shear_degrees: float = d.SHEAR_DEGREES,
        zoom: float = d.ZOOM,
        horizontal_flip: bool = d.HORIZONTAL_FLIP,
        class_weighting: str = d.CLASS_WEIGHTING,
        class_weight_minority_share: float = d.CLASS_WEIGHT_MINORITY_SHARE,
        reduce_lr_patience: int = d.REDUCE_LR_PATIENCE,
        reduce_lr_factor: float = d.REDUCE_LR_FACTOR,
        mixed_precision: bool = d.MIXED_PRECISION,
        xla: bool = d.XLA,
        checkpoint_root: str = d.CHECKPOINT_ROOT,
        threshold_rule: str = d.THRESHOLD_RULE,
        threshold_target: float = d.THRESHOLD_TARGET,
        min_accuracy: float = d.MIN_ACCURACY,
        min_auc: float = d.MIN_AUC,
        min_precision: float = d.MIN_PRECISION,
        min_recall: float = d.MIN_RECALL,
        gating_metric: str = d.GATING_METRIC,
        max_regression: float = d.MAX_REGRESSION,
    ):
        augmentation = dict(rotation_degrees=rotation_degrees, width_shift=width_shift,
                            height_shift=height_shift, shear_degrees=shear_degrees, zoom=zoom,
                            horizontal_flip=horizontal_flip)
        training = dict(batch_size=batch_size, class_weighting=class_weighting,
                        class_weight_minority_share=class_weight_minority_share,
                        early_stopping_patience=early_stopping_patience,
                        reduce_lr_patience=reduce_lr_patience, reduce_lr_factor=reduce_lr_factor,
                        mixed_precision=mixed_precision, xla=xla, seed=seed,
                        checkpoint_root=checkpoint_root, require_gpu=require_gpu,
                        run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER, **augmentation)

        place = platform.place
        check_task = place(c.check_parameters(**_arguments(locals())), "check-parameters")
        check_task.set_caching_options(False)

        split_task = place(c.split(data_root=data_root, val_fraction=val_fraction,
                                 test_fraction=test_fraction, seed=seed,
                                 min_image_side=min_image_side,
                                 max_image_pixels=max_image_pixels), "split")
        split_task.set_caching_options(False)  # the same data_root gains images between runs
        split_task.after(check_task)

        head_task = place(c.train_head(train=split_task.outputs["train"],
                                     validation=split_task.outputs["validation"],
                                     image_size=image_size, epochs=head_epochs,
                                     learning_rate=head_learning_rate, weights=weights,
                                     allow_random_init=allow_random_init,
                                     **training), "train-head")

        fine_tune_task = place(c.fine_tune(head_model=head_task.outputs["model"],
                                         train=split_task.outputs["train"],
                                         validation=split_task.outputs["validation"],
                                         epochs=fine_tune_epochs,
                                         learning_rate=fine_tune_learning_rate,
                                         unfreeze=unfreeze, **training), "fine-tune")

        evaluate_task = place(c.evaluate(model=fine_tune_task.outputs["model"],
                                       validation=split_task.outputs["validation"],
                                       test=split_task.outputs["test"],
                                       registry_root=registry_root, batch_size=batch_size,
                                       threshold_rule=threshold_rule,
                                       threshold_target=threshold_target,
                                       min_accuracy=min_accuracy, min_auc=min_auc,
                                       min_precision=min_precision, min_recall=min_recall,
                                       gating_metric=gating_metric,
                                       max_regression=max_regression,
                                       require_gpu=require_gpu), "evaluate")
        evaluate_task.set_caching_options(False)  # the champion may have changed

        with dsl.If(evaluate_task.outputs["Output"] == True, name="blessed"):  # noqa: E712
            push_task = place(c.push(model=fine_tune_task.outputs["model"],
                                   evaluation=evaluate_task.outputs["metrics"],
                                   train=split_task.outputs["train"],
                                   validation=split_task.outputs["validation"],
                                   registry_root=registry_root,
                                   run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER), "push")
            push_task.set_caching_options(False)  # publishing is never skipped

    return admod_pipeline


def _arguments(scope: dict) -> dict:
    """The pipeline's own parameters among the names in `scope` (its function's locals)."""
    import inspect

    from admod.components import check_parameters

    return {name: scope[name] for name in inspect.signature(check_parameters).parameters}

