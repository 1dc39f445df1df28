import csv
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from admod import registry, serving
from admod import model as model_lib
from admod.defaults import CLASS_NAMES
from tests.support import results, small_resnet

SIZE = 32


@pytest.fixture(scope="module", autouse=True)
def small_base():
    """ResNet50's stand-in (tests/support/small_resnet.py): predict does not depend on the
    architecture (tests/admod/test_tf_serving_loader.py serves ResNet50 itself)."""
    with small_resnet.in_place():
        yield


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A registry with one version holding a random-weights model and its SavedModel."""
    tmp = tmp_path_factory.mktemp("serving")
    model, _ = model_lib.build_model(SIZE, weights="none")
    folder = tmp / "staging"
    folder.mkdir()
    model.save(folder / registry.MODEL_FILE)
    serving.export(model, SIZE, 0.5, registry.serving_model_dir(str(folder)))
    (folder / "model_info.json").write_text(json.dumps(
        results.model_info(image_size=SIZE).to_json()))
    root = str(tmp / "registry")
    uri, _ = registry.push(str(folder), root, None)
    return root, uri, model


def _files(demo_root):
    return sorted(os.path.join(demo_root, c, n) for c in CLASS_NAMES
                  for n in os.listdir(os.path.join(demo_root, c)))[:12]


def test_predict_scores_a_folder_and_reports_a_corrupt_file(published, demo_root, tmp_path):
    root, _, _ = published
    folder = tmp_path / "inbox"
    folder.mkdir()
    for path in _files(demo_root)[:3]:
        (folder / os.path.basename(path)).write_bytes(open(path, "rb").read())
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    result = subprocess.run([sys.executable, "-m", "admod.pipeline.cli", "predict", "--model", root,
                             str(folder)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 3 and all(0 <= float(r["probability"]) <= 1 for r in rows)
    assert {r["label"] for r in rows} <= set(CLASS_NAMES)
    # Nothing but the real problem: none of TensorFlow's start-up lines (absl, CUDA, oneDNN).
    (said,) = result.stderr.splitlines()
    assert said.startswith("admod: cannot score") and "broken.jpg" in said


def test_the_request_body_is_made_without_tensorflow(demo_root):
    """--request-body base64-encodes files: importing TensorFlow (seconds) for it was waste."""
    script = ("import sys; from admod.pipeline import cli; status = cli.main(sys.argv[1:]); "
              "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules; "
              "sys.exit(status)")
    result = subprocess.run([sys.executable, "-c", script, "predict", "--request-body",
                             *_files(demo_root)[:2]], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(json.loads(result.stdout)["instances"]) == 2 and result.stderr == ""


def test_predict_with_a_registry_without_champion(tmp_path, capsys, monkeypatch):
    import logging

    from admod.pipeline import cli

    # main's logging goes to the captured stderr: the handlers as they were afterwards
    monkeypatch.setattr(logging.getLogger(), "handlers", logging.getLogger().handlers[:])
    assert cli.main(["predict", "--model", str(tmp_path), str(tmp_path)]) == 3
    assert "neither a complete model version" in capsys.readouterr().err


def test_predict_from_a_gcs_registry(published, demo_root, bucket):
    from admod import predict
    from tests.conftest import upload_folder

    root, _, _ = published
    gcs_root = upload_folder(root, bucket, "registry")
    inputs = upload_folder(os.path.join(demo_root, CLASS_NAMES[1]), bucket, "inbox")
    local = list(predict.predict(root, [os.path.join(demo_root, CLASS_NAMES[1])]))
    remote = list(predict.predict(gcs_root, [inputs]))
    assert len(remote) == len(local) > 0
    assert [r[0].rsplit("/", 1)[1] for r in remote] == [r[0].rsplit("/", 1)[1] for r in local]
    np.testing.assert_allclose([r[1] for r in remote], [r[1] for r in local], atol=1e-6)


@pytest.mark.parametrize("lost", ["saved_model.pb", "variables/variables.data-00000-of-00001"])
def test_predict_against_a_partly_deleted_saved_model_names_it(published, demo_root, tmp_path,
                                                               lost):
    """A SavedModel with a file deleted ended in OSError or a TensorFlow OpError traceback."""
    import shutil

    from admod import predict
    from admod.errors import AdmodError

    _, uri, _ = published
    version = tmp_path / os.path.basename(uri)
    shutil.copytree(uri, version)
    saved_model = registry.serving_model_dir(str(version))
    os.remove(os.path.join(saved_model, lost))
    with pytest.raises(AdmodError, match=f"The SavedModel '{saved_model}' cannot be loaded .*"
                                         "missing or damaged; push the model again"):
        list(predict.predict(str(version), _files(demo_root)[:1]))


def test_predict_on_an_empty_folder_says_so(tmp_path):
    """It used to print a header alone and exit 0: nothing scored, nothing said."""
    from admod import serving_request
    from admod.errors import AdmodError

    (tmp_path / "inbox").mkdir()
    with pytest.raises(AdmodError, match=f"Folder '{tmp_path}/inbox' holds no files to score"):
        list(serving_request.input_uris([str(tmp_path / "inbox")]))
