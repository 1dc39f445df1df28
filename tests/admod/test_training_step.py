"""train_head_step as the component runs it, on multi-shard data with the method's augmentation:
class weights come from the training split's counts and reach the model's metadata; the
validation data is never augmented and the same on every pass; the training data is."""

import json
import os

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from sklearn.utils.class_weight import compute_class_weight

from admod import datasets, registry, split, steps, training
from admod.defaults import CLASS_NAMES
from admod.options import AugmentOptions
from admod import split_steps
from tests.support import small_resnet, splitting

SIZE = 32


@pytest.fixture(scope="module", autouse=True)
def small_base():
    """ResNet50's stand-in (tests/support/small_resnet.py): these promises are the step's, not the
    architecture's (tests/admod/test_model_training.py pins ResNet50's)."""
    with small_resnet.in_place():
        yield


@pytest.fixture(scope="module")
def trained(demo_root, tmp_path_factory, monkeypatch_module):
    tmp = tmp_path_factory.mktemp("train-head")
    out = {name: str(tmp / name) for name in split.SPLITS}
    config = splitting.split_config(val_fraction=0.3, test_fraction=0.0, seed=5, shard_size=4)
    split_steps.split_step(data_root=demo_root, out_dirs=out,
                           manifest_path=str(tmp / "manifest.csv"),
                           report_path=str(tmp / "r.md"), **config)
    seen = {}
    real_train_phase = training.train_phase

    def recording(model, train_ds, val_ds, *args, **kwargs):
        seen.update(train=train_ds, validation=val_ds)
        return real_train_phase(model, train_ds, val_ds, *args, **kwargs)

    monkeypatch_module.setattr(training, "train_phase", recording)
    options = training.TrainingOptions(epochs=1, batch_size=8, require_gpu=False,
                                       class_weighting="balanced",
                                       augmentation=AugmentOptions())
    summary = steps.train_head_step(train_dir=out["train"], val_dir=out["validation"],
                                    model_dir=str(tmp / "model"), report_path=str(tmp / "r.html"),
                                    image_size=SIZE, weights="none", options=options)
    return tmp, out, pd.read_csv(tmp / "manifest.csv"), summary, seen


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def _labels(manifest, split_name):
    """Each file's class, from its source folder."""
    uris = manifest.loc[manifest["split"] == split_name, "uri"]
    return [CLASS_NAMES.index(os.path.basename(os.path.dirname(uri))) for uri in uris]


def test_class_weights_come_from_the_training_counts_and_reach_the_metadata(trained):
    tmp, _, manifest, summary, _ = trained
    train_labels = _labels(manifest, "train")
    expected = compute_class_weight("balanced", classes=np.array([0, 1]), y=train_labels)
    from_validation = compute_class_weight("balanced", classes=np.array([0, 1]),
                                           y=_labels(manifest, "validation"))
    assert not np.allclose(expected, from_validation, rtol=1e-3)  # the two would differ
    expected = {name: pytest.approx(float(w), rel=1e-9) for name, w in zip(CLASS_NAMES, expected,
                                                                            strict=True)}
    assert summary.class_weights == expected
    stored = json.load(open(tmp / "model" / registry.MODEL_INFO_FILE))
    assert stored["class_weights"] == expected


def _images(dataset) -> list[bytes]:
    return [image.astype(np.uint8).tobytes()
            for images, _ in dataset.as_numpy_iterator() for image in images]


def _decoded_on_their_own(manifest, split_name) -> set[bytes]:
    """Every source file of the split decoded and resized alone (no shards, no augmentation;
    tf.data only to run the decode as a graph)."""
    files = [open(uri, "rb").read() for uri in manifest.loc[manifest["split"] == split_name, "uri"]]
    decoded = tf.data.Dataset.from_tensor_slices(files).map(
        lambda data: datasets.decode_and_resize(data, SIZE))
    return {image.tobytes() for image in decoded.as_numpy_iterator()}


def test_validation_is_unaugmented_and_the_same_on_every_pass(trained):
    _, out, manifest, _, seen = trained
    assert len([f for f in os.listdir(out["validation"]) if f.endswith(".tfrecord")]) >= 3
    first, second = _images(seen["validation"]), _images(seen["validation"])
    assert first == second
    assert len(first) == len(_labels(manifest, "validation"))
    assert set(first) == _decoded_on_their_own(manifest, "validation")


def test_training_images_are_augmented(trained):
    _, _, manifest, _, seen = trained
    unaugmented = _decoded_on_their_own(manifest, "train")
    augmented = _images(seen["train"])
    assert len(augmented) == len(_labels(manifest, "train"))
    assert sum(image not in unaugmented for image in augmented) > len(augmented) // 2


class _Stop(Exception):
    """Raised by the recording fit: the step got as far as training."""


def _fit_arguments(out, monkeypatch, tmp_path, options):
    """What train_head_step hands to Keras's fit (datasets, callbacks, class weights), with
    `options`, without training."""
    import keras

    seen = {}

    def recording_fit(self, x=None, **kwargs):
        seen.update(kwargs, train=x)
        raise _Stop

    monkeypatch.setattr(keras.Model, "fit", recording_fit)
    with pytest.raises(_Stop):
        steps.train_head_step(train_dir=out["train"], val_dir=out["validation"],
                              model_dir=str(tmp_path / "model"), report_path=str(tmp_path / "r"),
                              image_size=SIZE, weights="none", options=options)
    return seen


def test_with_an_identity_augmentation_training_sees_the_pixels_serving_sees(
        trained, monkeypatch, tmp_path):
    """Training batches, augmentation aside, are the source files decoded as serving decodes
    them: the same set of images as validation's path gives, no other scaling."""
    _, out, manifest, _, _ = trained
    identity = AugmentOptions(rotation_degrees=0, width_shift=0, height_shift=0,
                                     shear_degrees=0, zoom=0, horizontal_flip=False)
    seen = _fit_arguments(out, monkeypatch, tmp_path,
                          training.TrainingOptions(epochs=1, batch_size=8, require_gpu=False,
                                                   augmentation=identity))
    batches = list(seen["train"].as_numpy_iterator())
    assert all(images.dtype == np.float32 and images.max() > 1 for images, _ in batches)
    assert set(_images(seen["train"])) == _decoded_on_their_own(manifest, "train")


def test_the_history_records_the_learning_rate_each_epoch_ran_with(trained):
    """The curves show the learning rate: history.csv carries it (Keras's CSVLogger alone
    does not)."""
    tmp, _, _, _, _ = trained
    history = training.read_history(str(tmp / "model"), "head")
    assert list(history["learning_rate"]) == pytest.approx(
        [training.TrainingOptions().learning_rate])
    assert "learning rate" in open(tmp / "r.html").read()


def test_the_step_trains_with_the_methods_callbacks(trained, monkeypatch, tmp_path):
    """EarlyStopping restoring the best weights, ModelCheckpoint on the best val_loss and
    ReduceLROnPlateau, each on val_loss with the options' values, as the step runs them."""
    import keras

    _, out, _, _, _ = trained
    options = training.TrainingOptions(epochs=3, batch_size=8, require_gpu=False,
                                       early_stopping_patience=4,
                                       reduce_lr_patience=2, reduce_lr_factor=0.25)
    seen = _fit_arguments(out, monkeypatch, tmp_path, options)
    by_kind = {type(c): c for c in seen["callbacks"]}
    plateau = by_kind[keras.callbacks.ReduceLROnPlateau]
    assert (plateau.monitor, plateau.patience, plateau.factor) == ("val_loss", 2, 0.25)
    assert plateau.min_lr == options.min_learning_rate
    stopping = by_kind[keras.callbacks.EarlyStopping]
    assert (stopping.monitor, stopping.patience, stopping.restore_best_weights) == (
        "val_loss", 4, True)
    checkpoint = by_kind[keras.callbacks.ModelCheckpoint]
    assert (checkpoint.monitor, checkpoint.save_best_only) == ("val_loss", True)
    assert keras.callbacks.BackupAndRestore in by_kind
    assert seen["epochs"] == 3 and seen["initial_epoch"] == 0


def test_the_fine_tune_step_moves_the_base_kernels_and_never_the_batchnorm_statistics(
        trained, tmp_path):
    from admod import model as model_lib

    tmp, out, _, _, _ = trained
    head = model_lib.load(str(tmp / "model" / registry.MODEL_FILE))
    head_dir = _head_any_epoch_beats(tmp / "model", tmp_path / "head")
    summary = steps.fine_tune_step(
        head_dir=head_dir, train_dir=out["train"], val_dir=out["validation"],
        model_dir=str(tmp_path / "tuned"), report_path=str(tmp_path / "r.html"),
        unfreeze="conv5_block1",
        options=training.TrainingOptions(epochs=1, batch_size=8, require_gpu=False,
                                         learning_rate=1e-2))
    # an epoch beat the head's val_loss: fine-tuning's weights are kept, with their checkpoint
    assert summary.weights_kept == "fine_tune"
    assert summary.kept_val_loss == summary.best_val_loss
    assert (tmp_path / "tuned" / training.BEST_MODEL_FILE).exists()
    tuned = model_lib.load(str(tmp_path / "tuned" / registry.MODEL_FILE))
    before = {w.path: w.numpy() for w in head.get_layer(model_lib.BASE_NAME).weights}
    after = {w.path: w.numpy() for w in tuned.get_layer(model_lib.BASE_NAME).weights}
    moved = {p for p in before if not np.array_equal(before[p], after[p])}
    later_kernels = {p for p in before if p.endswith("kernel") and p.split("/")[-2].startswith(
        ("conv5_block1", "conv5_block2", "conv5_block3"))}
    assert later_kernels and later_kernels <= moved  # fine-tuning fine-tunes
    assert not any(p.split("/")[-2].startswith(("conv2", "conv3", "conv4")) for p in moved)
    assert not any("moving_" in p for p in moved)  # BatchNorm statistics stay


def _head_any_epoch_beats(head_dir, copy):
    """A copy of the head whose recorded best val_loss any fine-tuning epoch beats."""
    import shutil

    shutil.copytree(head_dir, copy)
    info_path = copy / registry.MODEL_INFO_FILE
    info = json.loads(info_path.read_text())
    info_path.write_text(json.dumps({**info, "best_val_loss": 1e9}))
    return str(copy)


def test_a_fine_tune_that_only_gets_worse_hands_on_the_heads_weights(trained, tmp_path):
    """Each phase's checkpoint and early stopping used to start afresh: a fine-tune worse than
    the head went to evaluate. Now it must beat the head's best val_loss to be kept."""
    from admod import model as model_lib

    tmp, out, _, head_summary, _ = trained
    options = training.TrainingOptions(epochs=1, batch_size=8, require_gpu=False,
                                       learning_rate=1.0)
    summary = steps.fine_tune_step(
        head_dir=str(tmp / "model"), train_dir=out["train"], val_dir=out["validation"],
        model_dir=str(tmp_path / "tuned"), report_path=str(tmp_path / "r.html"),
        unfreeze="conv5_block3", options=options)
    assert summary.best_val_loss > head_summary.best_val_loss  # it only got worse
    assert summary.weights_kept == "head"
    assert summary.kept_val_loss == head_summary.best_val_loss
    tuned = model_lib.load(str(tmp_path / "tuned" / registry.MODEL_FILE))
    training.compile_model(tuned, 1e-3)
    val = datasets.make_dataset(out["validation"], SIZE, 8, training=False)
    val_loss = tuned.evaluate(val, verbose=0, return_dict=True)["loss"]
    assert val_loss == pytest.approx(head_summary.best_val_loss, rel=1e-3)
    assert not (tmp_path / "tuned" / training.BEST_MODEL_FILE).exists()  # no worse checkpoint
    assert "The head&#x27;s weights are kept" in (tmp_path / "r.html").read_text()
