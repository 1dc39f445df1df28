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

from admod import augment, datasets, registry, split, steps, training
from admod.defaults import CLASS_NAMES

SIZE = 32


@pytest.fixture(scope="module")
def trained(demo_root, tmp_path_factory, monkeypatch_module):
    tmp = tmp_path_factory.mktemp("train-head")
    out = {name: str(tmp / name) for name in split.SPLITS}
    config = split.SplitConfig(val_fraction=0.3, test_fraction=0.0, seed=5, shard_size=4)
    steps.split_step(data_root=demo_root, out_dirs=out, manifest_path=str(tmp / "manifest.csv"),
                     report_path=str(tmp / "r.md"), config=config)
    seen = {}
    real_train_phase = training.train_phase

    def recording(model, train_ds, val_ds, *args, **kwargs):
        seen.update(train=train_ds, validation=val_ds)
        return real_train_phase(model, train_ds, val_ds, *args, **kwargs)

    monkeypatch_module.setattr(training, "train_phase", recording)
    options = training.TrainingOptions(epochs=1, batch_size=8, class_weighting="balanced",
                                       augmentation=augment.AugmentConfig())
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
    assert summary["class_weights"] == expected
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
