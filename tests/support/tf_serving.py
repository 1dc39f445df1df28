"""A SavedModel loaded and queried the way TF Serving does it, for any installed TensorFlow.

TF Serving (and so Vertex AI's prebuilt TensorFlow images and KServe's TensorFlow runtime)
loads a SavedModel with TensorFlow's C++ `LoadSavedModel`: it imports the MetaGraph tagged
`serve`, runs the graph's restore op from `variables/`, then feeds the signature's tensors in a
`Session`. `tf.compat.v1.saved_model.loader.load` does the same in a v1 `Session`; Python's
`tf.saved_model.load` does not (it restores through the object graph), which is why a model can
pass it and still fail every request on TF Serving.

Requests are decoded by TF Serving's JSON rules (tensorflow/serving,
`tensorflow_serving/util/json_tensor.cc` at 00f8ba53: row format `{"instances": [...]}`, each
instance an object keyed by input name; a `{"b64": ...}` object, its only key, is base64-decoded
into a DT_STRING tensor).

Standalone on purpose (TensorFlow and NumPy only, no admod), so that it runs under an older
TensorFlow in its own virtual environment:

    python tests/support/tf_serving.py CASES_DIR
    # CASES_DIR from `python -m tests.support.serving_cases`

exits 0 when the SavedModel in CASES_DIR answers the recorded request as the Keras model did.
"""

import base64
import json
import os
import sys

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402

tf.get_logger().setLevel("ERROR")  # the v1 loader's deprecation notice

SIGNATURE = "serving_default"
TAG = "serve"
CASES_FILE = "cases.json"
SAVED_MODEL = "saved_model/1"


def decode_instances(body: dict, input_names: list[str]) -> dict[str, list]:
    """The input tensors TF Serving builds from a row-format request body."""
    columns: dict[str, list] = {name: [] for name in input_names}
    for instance in body["instances"]:
        if set(instance) != set(input_names):
            raise ValueError(f"instance keys {sorted(instance)} are not the signature's inputs "
                             f"{sorted(input_names)}")
        for name, value in instance.items():
            if isinstance(value, dict):
                if list(value) != ["b64"] or not isinstance(value["b64"], str):
                    raise ValueError(f"{name}: not formatted correctly for base64 data")
                value = base64.b64decode(value["b64"], validate=True)
            columns[name].append(value)
    return columns


def predict(saved_model: str, body: dict) -> dict[str, np.ndarray]:
    """The signature's outputs for `body`, through the v1 loader in a fresh graph and Session."""
    graph = tf.Graph()
    with tf.compat.v1.Session(graph=graph) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, [TAG], saved_model)
        signature = meta_graph.signature_def[SIGNATURE]
        inputs = decode_instances(body, list(signature.inputs))
        feed = {signature.inputs[name].name: value for name, value in inputs.items()}
        fetch = {name: info.name for name, info in signature.outputs.items()}
        return session.run(fetch, feed)


def compare(outputs: dict, expected: dict, tolerance: float) -> list[str]:
    """What differs between the served outputs and the Keras model's (its probability through
    the export's calibration), one line each."""
    problems = []
    served = np.asarray(outputs["probability"], dtype=np.float64)
    keras_p = np.asarray(expected["probability"], dtype=np.float64)
    labels = [label.decode() if isinstance(label, bytes) else label for label in outputs["label"]]
    for i, kind in enumerate(expected["kinds"]):
        if abs(served[i] - keras_p[i]) > tolerance:
            problems.append(f"{kind}: probability {served[i]:.7f}, Keras, calibrated "
                            f"{keras_p[i]:.7f}")
        if labels[i] != expected["label"][i]:
            problems.append(f"{kind}: label {labels[i]}, Keras {expected['label'][i]}")
    return problems


def check(cases_dir: str) -> list[str]:
    with open(os.path.join(cases_dir, CASES_FILE)) as f:
        cases = json.load(f)
    outputs = predict(os.path.join(cases_dir, SAVED_MODEL), cases["request"])
    for i, kind in enumerate(cases["expected"]["kinds"]):
        print(f"  {kind:32} served {float(outputs['probability'][i]):.7f}  "
              f"Keras, calibrated {cases['expected']['probability'][i]:.7f}  "
              f"{outputs['label'][i].decode()}")
    return compare(outputs, cases["expected"], cases["tolerance"])


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    print(f"TensorFlow {tf.__version__}: v1 SavedModel loader on {argv[0]}")
    problems = check(argv[0])
    for line in problems:
        print("MISMATCH " + line)
    print("served as the Keras model does" if not problems else
          f"{len(problems)} mismatch(es): TF Serving on TensorFlow {tf.__version__} would not "
          "serve this model as trained")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
