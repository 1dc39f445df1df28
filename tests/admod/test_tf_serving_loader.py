"""The pushed SavedModel served the way TF Serving serves it (tests/support/tf_serving.py: the v1
SavedModel loader in a Session, the JSON request decoded by TF Serving's rules), under the
TensorFlow installed here, on the small stand-in for ResNet50 (tests/support/small_resnet.py: its
layer kinds, so its ops); `make test-tf-serving` runs the same check on ResNet50 itself under
TensorFlow 2.15.1, Vertex AI's prebuilt serving image's version."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from admod import model as model_lib
from admod import registry, serving, serving_request
from admod.pipeline import cli
from tests.support import serving_cases, tf_serving
from tests.support.image_kinds import kinds
from tests.support import results, small_resnet


@pytest.fixture(scope="module", autouse=True)
def small_base():
    """ResNet50's stand-in (tests/support/small_resnet.py): the loader reads the same ops, in
    a fraction of the time."""
    with small_resnet.in_place():
        yield


@pytest.fixture(scope="module")
def small():
    """A random-weights model scoring the image kinds apart, and a threshold between them."""
    return serving_cases.small_model()


@pytest.fixture(scope="module")
def cases_dir(tmp_path_factory, small):
    out = str(tmp_path_factory.mktemp("tf_serving"))
    serving_cases.export_with_cases(out, *small)
    return out


def _cases(cases_dir):
    with open(os.path.join(cases_dir, tf_serving.CASES_FILE)) as f:
        return json.load(f)


def test_every_image_kind_is_served_as_the_keras_model_scores_it(cases_dir):
    cases = _cases(cases_dir)
    expected = cases["expected"]
    assert len(expected["kinds"]) == len(kinds()) >= 9
    # The comparison can tell images apart and both labels are served.
    assert np.ptp(expected["probability"]) > 0.3
    assert set(expected["label"]) == {"allowed_ads", "not_allowed_ads"}
    assert tf_serving.check(cases_dir) == []


def test_a_model_held_in_a_tf_module_fails_every_request_through_the_loader(cases_dir, small,
                                                                           tmp_path):
    """What push exported before (a Keras 3 model inside a tf.Module, tf.saved_model.save):
    Python's loader serves it, TF Serving's restores variables the signature never reads."""
    model, threshold = small

    class Module(tf.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def serve(self, image_bytes):
            return serving._serving_function(model, 32, threshold, 10**8,
                                             serving_cases.CALIBRATION)(image_bytes)

    module = Module()
    path = str(tmp_path / "module")
    tf.saved_model.save(module, path, signatures={serving.SIGNATURE: module.serve})
    body = _cases(cases_dir)["request"]
    served_by_python = tf.saved_model.load(path).signatures[serving.SIGNATURE](
        image_bytes=tf.constant(tf_serving.decode_instances(body, ["image_bytes"])["image_bytes"]))
    assert served_by_python["probability"].shape == (len(kinds()),)
    with pytest.raises(tf.errors.FailedPreconditionError, match="Could not find variable"):
        tf_serving.predict(path, body)


def test_the_export_carries_the_weights_once_and_no_optimizer_state(tmp_path):
    keras.utils.set_random_seed(0)
    model, _ = model_lib.build_model(32, weights="none")
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(np.full((4, 32, 32, 3), 128, np.float32), np.array([0, 1, 0, 1], np.float32),
              epochs=1, verbose=0)
    assert model.optimizer.variables  # there is optimizer state to leave out
    path = str(tmp_path / "saved_model")
    serving.export(model, 32, 0.5, path)
    reader = tf.train.load_checkpoint(os.path.join(path, "variables", "variables"))
    stored = {k: v for k, v in reader.get_variable_to_shape_map().items()
              if k != "_CHECKPOINTABLE_OBJECT_GRAPH"}
    assert sorted(int(np.prod(s)) for s in stored.values()) == sorted(
        int(np.prod(w.shape)) for w in model.weights)


def test_the_threshold_and_the_calibration_travel_inside_the_graph(cases_dir):
    cases = _cases(cases_dir)
    outputs = tf_serving.predict(os.path.join(cases_dir, tf_serving.SAVED_MODEL),
                                 cases["request"])
    raw, raw_threshold = cases["expected"]["raw_probability"], cases["raw_threshold"]
    # some images score between 0.5 and the threshold: a label at 0.5 would differ
    assert any(0.5 <= p < raw_threshold for p in raw)
    assert [label.decode() for label in outputs["label"]] == [
        "not_allowed_ads" if p >= raw_threshold else "allowed_ads" for p in raw]
    # every served probability is moved by the calibration, to the calibrated one
    assert np.abs(outputs["probability"] - np.asarray(raw)).min() > 0.01
    np.testing.assert_allclose(outputs["probability"], cases["expected"]["probability"],
                               atol=cases["tolerance"])
    # the served label is the calibrated probability at the calibrated threshold
    assert [label.decode() for label in outputs["label"]] == [
        "not_allowed_ads" if p >= cases["threshold"] else "allowed_ads"
        for p in outputs["probability"]]


def test_the_request_body_admod_prints_is_answered_as_admod_predict_scores(small, tmp_path,
                                                                           capsys):
    """`admod predict --request-body` and `admod predict` on the same files: the body, decoded by
    TF Serving's JSON rules and run through its loader, gives predict's probabilities."""
    model, threshold = small
    staging = tmp_path / "staging"
    serving.export(model, 32, threshold, registry.serving_model_dir(str(staging)))
    model.save(staging / registry.MODEL_FILE)
    (staging / registry.MODEL_INFO_FILE).write_text(json.dumps(
        results.model_info(image_size=32).to_json()))
    version, _ = registry.push(str(staging), str(tmp_path / "registry"), None)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name, data in list(kinds().items())[:4]:
        suffix = ".jpg" if "JPEG" in name else ".png"
        (inbox / (name.replace(" ", "_") + suffix)).write_bytes(data)
    assert cli.main(["predict", "--request-body", str(inbox)]) == 0
    body = capsys.readouterr().out
    assert cli.main(["predict", "--model", version, str(inbox)]) == 0
    scored = capsys.readouterr().out.splitlines()[1:]
    request = json.loads(body)
    assert list(request) == ["instances"] and len(request["instances"]) == 4
    assert all(list(i) == ["image_bytes"] and list(i["image_bytes"]) == ["b64"]
               for i in request["instances"])
    served = tf_serving.predict(registry.serving_model_dir(version), request)
    np.testing.assert_allclose(served["probability"],
                               [float(row.split(",")[1]) for row in scored], atol=1e-5)


def test_an_image_exactly_at_the_threshold_is_served_as_evaluation_decides_it(small, tmp_path):
    """The exported graph decides the label from the raw score at the raw threshold; an image
    scoring exactly the threshold is not allowed in evaluation (score >= threshold), so it must
    be served not allowed too, through TF Serving's loader (`>` there would serve it allowed)."""
    from admod.calibration import Calibration
    from admod.evaluation import classification_metrics

    model, _ = small
    body = serving_request.body([next(iter(kinds().values()))])
    serving.export(model, 32, 0.5, str(tmp_path / "probe"), calibration=Calibration())
    raw = float(tf_serving.predict(str(tmp_path / "probe"), body)["probability"][0])
    calibration = serving_cases.CALIBRATION  # as pushed: calibrated, the label from the raw score
    serving.export(model, 32, raw, str(tmp_path / "at"), calibration=calibration)
    served = tf_serving.predict(str(tmp_path / "at"), body)
    calibrated = float(calibration.apply([raw])[0])
    assert float(served["probability"][0]) == pytest.approx(calibrated, abs=1e-6)
    decided = classification_metrics([1], [calibrated], calibrated)["confusion_matrix"]
    assert decided == [[0, 0], [0, 1]]  # evaluation counts it not allowed (a true positive)
    assert served["label"][0].decode() == "not_allowed_ads"
