"""The admod DAG: check-parameters -> split -> train-head -> fine-tune -> evaluate -> push,
and, with an experiment, log-experiment after evaluate.

The split is three stages: list-images, then check-images over split_workers partitions in
parallel (dsl.ParallelFor), then split, which merges them (dsl.Collected); for a Kubeflow
Pipelines backend before 2.14, which cannot collect a loop's artifacts, one task does all three
with split_workers processes.

Every parameter defaults to the method's value (admod.defaults). Caching: list-images never (it
notices new files), evaluate never (a new champion), push never (it publishes); check-images,
split, train-head and fine-tune may reuse a result for identical inputs, which an unchanged data
root gives them (check-images takes its partition's fingerprint, not a fresh listing).
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
        split_workers: int = d.SPLIT_WORKERS,
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
        vertex_model: str = d.VERTEX_MODEL,
        vertex_project: str = d.VERTEX_PROJECT,
        vertex_location: str = d.VERTEX_LOCATION,
        vertex_serving_image: str = d.VERTEX_SERVING_IMAGE,
        vertex_default_alias: bool = d.VERTEX_DEFAULT_ALIAS,
        experiment: str = d.EXPERIMENT,
        vertex_tensorboard: str = d.VERTEX_TENSORBOARD,
    ):
        """Fine-tunes ResNet50 into an allowed / not-allowed ad classifier.

        Args:
            data_root: Folder or gs:// prefix with allowed_ads/ and not_allowed_ads/ (only read).
            registry_root: Folder or gs:// prefix of the model registry push publishes to.
            val_fraction: Share of the images for validation, by content hash (stable as it grows).
            test_fraction: Share held out for test (0: the headline figures come from validation).
            seed: Seed of the split, the initial weights, the shuffles and the augmentation draws.
            min_image_side: Images with a shorter side (pixels) are excluded as too_small.
            max_image_pixels: Images with more pixels are excluded (and refused in serving).
            split_workers: Parallel tasks checking the images (one listing partition each).
            image_size: Side in pixels the images are resized to (224 in the method).
            batch_size: Images per batch on each GPU (global batch: batch_size x GPUs).
            weights: Base weights: imagenet, none, or a path or gs:// URI of a no-top weights file.
            allow_random_init: Train from random weights when ImageNet's cannot be loaded, not fail.
            require_gpu: Fail the GPU steps at once when TensorFlow sees no GPU, not train on CPU.
            head_epochs: Most epochs of phase 1 (base frozen); early stopping may end it sooner.
            head_learning_rate: Adam learning rate of phase 1.
            fine_tune_epochs: Most epochs of phase 2 (base unfrozen), numbered on from phase 1.
            fine_tune_learning_rate: Adam learning rate of phase 2.
            unfreeze: Base blocks trained in phase 2: all, or the first one, such as conv5_block1.
            early_stopping_patience: Epochs without a better val_loss before a phase stops.
            rotation_degrees: Largest random rotation, in degrees (training only).
            width_shift: Largest random horizontal shift, as a share of the width.
            height_shift: Largest random vertical shift, as a share of the height.
            shear_degrees: Largest random shear, in degrees (0.2 = Keras 2's shear_range=0.2).
            zoom: Largest random zoom in or out, as a share (0.2: 80%-120%).
            horizontal_flip: Flip half of the training images horizontally.
            class_weighting: auto (inverse frequency when the minority is rare), balanced or none.
            class_weight_minority_share: auto weights classes when the minority's share is lower.
            reduce_lr_patience: Epochs without a better val_loss before the learning rate drops.
            reduce_lr_factor: Factor the learning rate is multiplied by on a plateau.
            mixed_precision: Train in mixed_float16 when a GPU is present.
            xla: Compile the training step with XLA when a GPU is present.
            checkpoint_root: Folder or gs:// prefix for each epoch's training state (preemption).
            threshold_rule: Operating threshold rule: min_precision, min_recall, max_f1 or fixed.
            threshold_target: The precision or recall the rule must reach, or the fixed threshold.
            min_accuracy: Blessing: the least accuracy at the operating threshold (0 turns it off).
            min_auc: Blessing: the least ROC-AUC (0 turns it off).
            min_precision: Blessing: the least precision for not allowed (0 turns it off).
            min_recall: Blessing: the least recall for not allowed (0 turns it off).
            gating_metric: Blessing: the metric compared with the champion's on the same images.
            max_regression: Blessing: how far the champion may beat the new model on it.
            vertex_model: Vertex AI Model Registry model push adds each version to (name or ID).
            vertex_project: Google Cloud project of vertex_model and experiment (submit sets it).
            vertex_location: Region of vertex_model and experiment (submit sets it).
            vertex_serving_image: Serving container of the Vertex model versions.
            vertex_default_alias: The champion's Vertex version also gets the default alias.
            experiment: Vertex AI Experiment the run's parameters and metrics are logged to.
            vertex_tensorboard: Vertex TensorBoard (resource name) for the experiment's curves.
        """
        augmentation = dict(rotation_degrees=rotation_degrees, width_shift=width_shift,
                            height_shift=height_shift, shear_degrees=shear_degrees, zoom=zoom,
                            horizontal_flip=horizontal_flip)
        training = dict(batch_size=batch_size, class_weighting=class_weighting,
                        class_weight_minority_share=class_weight_minority_share,
                        early_stopping_patience=early_stopping_patience,
                        reduce_lr_patience=reduce_lr_patience, reduce_lr_factor=reduce_lr_factor,
                        mixed_precision=mixed_precision, xla=xla, seed=seed,
                        checkpoint_root=checkpoint_root, require_gpu=require_gpu, **augmentation)

        place = platform.place
        check_task = place(c.check_parameters(**_arguments(locals())), "check-parameters")
        check_task.set_caching_options(False)

        # The split: list (never cached: it notices new files), check the partitions in
        # parallel, merge. A partition is checked again only when its files changed (its key
        # holds their fingerprint), the merge and training only when a partition did. Where the
        # backend cannot collect a loop's artifacts, all three in one task, never cached.
        if platform.fan_in:
            list_task = place(c.list_images(data_root=data_root, split_workers=split_workers),
                              "list-images")
            list_task.set_caching_options(False)
            list_task.after(check_task)
            with dsl.ParallelFor(list_task.output) as partition:
                check_images_task = place(c.check_images(
                    data_root=data_root, partition=partition, split_workers=split_workers,
                    min_image_side=min_image_side, max_image_pixels=max_image_pixels),
                    "check-images")
            split_task = place(c.split(parts=dsl.Collected(check_images_task.outputs["part"]),
                                       data_root=data_root, val_fraction=val_fraction,
                                       test_fraction=test_fraction, seed=seed,
                                       max_image_pixels=max_image_pixels), "split")
        else:
            split_task = place(c.split_in_one_task(
                data_root=data_root, split_workers=split_workers, min_image_side=min_image_side,
                max_image_pixels=max_image_pixels, val_fraction=val_fraction,
                test_fraction=test_fraction, seed=seed), "split")
            split_task.set_caching_options(False)
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
                                   run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
                                   vertex_model=vertex_model, vertex_project=vertex_project,
                                   vertex_location=vertex_location,
                                   vertex_serving_image=vertex_serving_image,
                                   vertex_default_alias=vertex_default_alias), "push")
            push_task.set_caching_options(False)  # publishing is never skipped

        with dsl.If(experiment != "", name="experiment-set"):
            log_task = place(c.log_experiment(parameters=check_task.outputs["checked"],
                                              evaluation=evaluate_task.outputs["metrics"],
                                              head_model=head_task.outputs["model"],
                                              fine_tune_model=fine_tune_task.outputs["model"],
                                              experiment=experiment,
                                              vertex_project=vertex_project,
                                              vertex_location=vertex_location,
                                              vertex_tensorboard=vertex_tensorboard,
                                              run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER),
                             "log-experiment")
            log_task.set_caching_options(False)  # each run is logged

    return admod_pipeline


def _arguments(scope: dict) -> dict:
    """The pipeline's own parameters among the names in `scope` (its function's locals)."""
    import inspect

    from admod.components import check_parameters

    return {name: scope[name] for name in inspect.signature(check_parameters).parameters
            if name != "checked"}  # its output

