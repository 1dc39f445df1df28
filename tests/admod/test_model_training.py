import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from admod import model as model_lib
from admod import training
from admod.errors import AdmodError
from tests.support import small_resnet

SIZE = 32
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _data(n=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, (n, SIZE, SIZE, 3)).astype("float32")
    y = (rng.random(n) < 0.5).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(8)


def _snapshot(layer):
    return {w.path: w.numpy().copy() for w in layer.weights}


def _fit(model, tmp_path, name, lr=1e-2):
    options = training.TrainingOptions(epochs=1, learning_rate=lr)
    return training.train_phase(model, _data(), _data(seed=1), options, name, str(tmp_path / name),
                                None)


def test_head_phase_leaves_every_base_weight_unchanged(tmp_path):
    """Kernels and BatchNorm statistics of the base, on the small stand-in for ResNet50 (its
    layer kinds; the freezing is build_model's, whatever the base)."""
    with small_resnet.in_place():
        model, source = model_lib.build_model(SIZE, weights="none")
    assert source == "random initialisation"
    before = _snapshot(model.get_layer(model_lib.BASE_NAME))
    _fit(model, tmp_path, "head")
    after = _snapshot(model.get_layer(model_lib.BASE_NAME))
    assert all(np.array_equal(before[k], after[k]) for k in before)
    head = model.get_layer("dense_1").kernel.numpy()
    assert head.any()


def test_the_optimizer_state_is_made_before_fit_traces_the_train_step():
    """Made inside the first trace, Adam's slots made that trace about twice as slow
    (training.compile_model); fit then makes none, and each trainable weight has its two."""
    with small_resnet.in_place():
        model, _ = model_lib.build_model(SIZE, weights="none")
    model_lib.unfreeze(model, "conv5_block1")
    training.compile_model(model, 1e-3)
    made = [v.path for v in model.optimizer.variables]
    assert len(made) >= 2 * len(model.trainable_variables) > 0
    model.fit(_data(), epochs=1, verbose=0)
    assert [v.path for v in model.optimizer.variables] == made


def test_unfreezing_all_of_resnet50_leaves_every_batchnorm_layer_frozen():
    """On ResNet50 itself, every layer that holds weights: a fit that moves the kernels and never
    the statistics is tests/admod/test_training_step.py's (the fine-tune step)."""
    model, _ = model_lib.build_model(SIZE, weights="none")
    base = model.get_layer(model_lib.BASE_NAME)
    assert model_lib.unfreeze(model, "all") == len(base.trainable_weights) > 0
    weighted = [layer for layer in base.layers if layer.weights]
    batchnorm = [layer for layer in weighted if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(batchnorm) == 53 and not any(layer.trainable for layer in batchnorm)
    assert all(layer.trainable for layer in weighted if layer not in batchnorm)
    assert not any("moving_" in weight.path for weight in base.trainable_weights)


def test_unknown_block_is_a_clear_error():
    model, _ = model_lib.build_model(SIZE, weights="none")
    with pytest.raises(AdmodError, match="conv6_block1.*conv5_block3"):
        model_lib.unfreeze(model, "conv6_block1")


def test_weights_from_a_local_file(tmp_path):
    import keras
    base = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3))
    path = str(tmp_path / "resnet50_notop.weights.h5")
    base.save_weights(path)
    model, source = model_lib.build_model(SIZE, weights=path)
    assert source == path
    loaded = model.get_layer(model_lib.BASE_NAME).weights
    pairs = zip(base.weights, loaded, strict=True)
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in pairs)


def test_imagenet_comes_from_the_file_the_image_bakes(tmp_path, monkeypatch):
    """The trainer image's path: containers/bake_weights.py writes the file (legacy HDF5, like
    Keras's ImageNet file) and ADMOD_IMAGENET_WEIGHTS names it; Keras's cache is not used."""
    import importlib.util

    import h5py

    spec = importlib.util.spec_from_file_location(
        "bake_weights", os.path.join(REPO, "containers", "bake_weights.py"))
    bake = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bake)
    path = str(tmp_path / bake.FILE_NAME)
    bake.main("stand-in", path)
    monkeypatch.setenv(model_lib.BAKED_IMAGENET_WEIGHTS, path)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "no-cache"))
    model, source = model_lib.build_model(SIZE, weights="imagenet")
    assert source == bake.STAND_IN
    kernel = model.get_layer(model_lib.BASE_NAME).get_layer("conv1_conv").kernel.numpy()
    with h5py.File(path) as f:
        group = f["conv1_conv"]
        name = group.attrs["weight_names"][0]
        assert np.array_equal(kernel, group[name.decode() if isinstance(name, bytes) else name][()])
    os.remove(path)
    with pytest.raises(AdmodError, match="ADMOD_IMAGENET_WEIGHTS names .* does not exist"):
        model_lib.build_model(SIZE, weights="imagenet")


def test_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(AdmodError, match="does not exist"):
        model_lib.build_model(SIZE, weights=str(tmp_path / "missing.h5"))


def test_sigmoid_output_stays_float32_under_mixed_precision():
    import keras
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model, _ = model_lib.build_model(SIZE, weights="none")
        out = model(np.zeros((1, SIZE, SIZE, 3), "float32"))
        assert model.get_layer("dense_1").compute_dtype == "float16"
        assert out.dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_preprocessing_is_the_resnet50_caffe_preprocessing():
    import keras
    x = np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")
    expected = keras.applications.resnet50.preprocess_input(x.copy())
    np.testing.assert_allclose(model_lib.ResNetPreprocess()(x), expected, rtol=1e-6)


@pytest.mark.parametrize("counts, mode, expected", [
    ([700, 300], "auto", {0: 1000 / 1400, 1: 1000 / 600}),
    ([550, 450], "auto", None),  # minority 45% >= 40%: not significant
    ([550, 450], "balanced", {0: 1000 / 1100, 1: 1000 / 900}),
    ([700, 300], "none", None),
])
def test_class_weights(counts, mode, expected):
    weights = training.class_weights(counts, mode, minority_share=0.4)
    assert weights == (pytest.approx(expected) if expected else None)


def test_unknown_class_weighting():
    with pytest.raises(AdmodError, match="class_weighting"):
        training.class_weights([700, 300], "inverse")


def test_cpu_only_machine_uses_float32_and_one_replica(monkeypatch):
    """As on a machine without a GPU, whatever this machine has."""
    import keras

    from admod import accelerators

    monkeypatch.setattr(accelerators.tf.config, "list_physical_devices", lambda kind: [])
    try:
        setup = accelerators.configure(mixed_precision=True, xla=True)
        assert setup.facts() == {"gpus": 0, "replicas": 1, "mixed_precision": False, "xla": False}
        assert keras.mixed_precision.global_policy().name == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")  # no test leaves a policy behind


def _imagenet_unreachable(monkeypatch, tmp_path):
    """As on a machine with no network and no weights file: Keras's download fails."""
    from keras.src.applications import resnet

    def no_network(*args, **kwargs):
        raise OSError("URL fetch failure: no network")

    monkeypatch.setattr(resnet.file_utils, "get_file", no_network)
    monkeypatch.delenv(model_lib.BAKED_IMAGENET_WEIGHTS, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))


def test_unavailable_imagenet_weights_fail_the_step(monkeypatch, tmp_path):
    _imagenet_unreachable(monkeypatch, tmp_path)
    with pytest.raises(AdmodError, match="ImageNet weights could not be loaded.*allow_random_init"):
        model_lib.build_model(SIZE, weights="imagenet")


def test_random_initialisation_only_when_allowed_and_then_recorded(monkeypatch, tmp_path):
    _imagenet_unreachable(monkeypatch, tmp_path)
    _, source = model_lib.build_model(SIZE, weights="imagenet", allow_random_init=True)
    assert source == "random initialisation (imagenet unavailable)"


def test_a_gpu_step_without_a_gpu_fails_at_once(monkeypatch):
    from admod import accelerators

    monkeypatch.setattr(accelerators.tf.config, "list_physical_devices", lambda kind: [])
    with pytest.raises(AdmodError, match="needs a GPU.*sees none"):
        accelerators.configure(mixed_precision=True, xla=True, require_gpu=True)
    assert accelerators.configure(mixed_precision=True, xla=True).gpus == 0


def test_the_block_names_parameters_accept_are_resnet50s():
    from admod import options

    model, _ = model_lib.build_model(SIZE, weights="none")
    base = model.get_layer(model_lib.BASE_NAME)
    assert options.RESNET50_BLOCKS == tuple(model_lib.residual_blocks(base))


def test_the_weights_digest_survives_save_and_load(tmp_path):
    with small_resnet.in_place():
        model, _ = model_lib.build_model(SIZE, weights="none")
    model.save(tmp_path / "a.keras")
    model.save(tmp_path / "b.keras")
    digests = {model_lib.weights_digest(model_lib.load(str(tmp_path / name)))
               for name in ("a.keras", "b.keras")}
    assert digests == {model_lib.weights_digest(model)}


def test_the_model_is_the_methods():
    """ResNet50 -> GlobalAveragePooling2D -> Dense 512 relu -> BatchNorm -> Dropout 0.5 ->
    Dense 256 relu -> BatchNorm -> Dropout 0.3 -> Dense 1 sigmoid, as shared/DESIGN.md has it."""
    model, _ = model_lib.build_model(SIZE, weights="none")
    head = [layer for layer in model.layers if layer.name not in ("image", "preprocess")]
    described = [(type(layer).__name__,
                  getattr(layer, "units", None) or getattr(layer, "rate", None),
                  getattr(getattr(layer, "activation", None), "__name__", None)) for layer in head]
    assert described == [
        ("Functional", None, None), ("GlobalAveragePooling2D", None, None),
        ("Dense", 512, "relu"), ("BatchNormalization", None, None), ("Dropout", 0.5, None),
        ("Dense", 256, "relu"), ("BatchNormalization", None, None), ("Dropout", 0.3, None),
        ("Dense", 1, "sigmoid")]
