"""One odd file, a missing credential, a corrupt shard or a full disk: reported, never a
traceback."""

import errno
import os
import shutil

import pytest
from PIL import Image

from admod import images, split, steps, storage
from admod import model as model_lib
from admod.defaults import CLASS_NAMES
from admod.errors import USER_ERROR_STATUS, AdmodError, disk_full, exit_on_user_error
from tests.splitting import run_split


def _data_root(tmp_path, demo_root):
    root = tmp_path / "data"
    shutil.copytree(demo_root, root)
    return root


def test_odd_files_are_excluded_with_a_reason(tmp_path, demo_root):
    root = _data_root(tmp_path, demo_root)
    folder = root / CLASS_NAMES[0]
    Image.new("RGB", (40, 40), "red").save(os.fsencode(folder) + b"/caf\xe9.png")  # Latin-1 name
    os.symlink(folder / "gone.png", folder / "dangling.png")
    os.symlink(folder / "loop.png", folder / "loop.png")
    out = {name: str(tmp_path / name) for name in split.SPLITS}
    config = split.SplitConfig(val_fraction=0.3, test_fraction=0.0, seed=1, min_image_side=32,
                               max_image_pixels=10**7)
    manifest = run_split(str(root), out, config)
    reasons = dict(zip(manifest["uri"].map(os.path.basename), manifest["reason"], strict=True))
    assert reasons["caf\ufffd.png"] == images.BAD_FILE_NAME
    assert reasons["dangling.png"] == reasons["loop.png"] == images.UNREADABLE
    manifest.to_csv(tmp_path / "manifest.csv")  # every uri can be written


def test_gcs_without_credentials_is_one_sentence(monkeypatch, tmp_path):
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-key.json"))
    storage.gcs_client.cache_clear()
    try:
        with pytest.raises(AdmodError, match="No Google Cloud credentials to read 'gs://ads/x"):
            storage.read_bytes("gs://ads/x.jpg")
    finally:
        storage.gcs_client.cache_clear()


def test_a_corrupt_shard_is_named(tmp_path, demo_root):
    out = {name: str(tmp_path / name) for name in split.SPLITS}
    config = split.SplitConfig(val_fraction=0.3, test_fraction=0.0, seed=1, min_image_side=32,
                               max_image_pixels=10**7, shard_size=5)
    steps.split_step(data_root=demo_root, out_dirs=out, manifest_path=str(tmp_path / "m.csv"),
                     report_path=str(tmp_path / "r.md"), config=config)
    shards = sorted(f for f in os.listdir(out["validation"]) if f.endswith(".tfrecord"))
    victim = os.path.join(out["validation"], shards[1])
    data = bytearray(open(victim, "rb").read())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: the record's checksum no longer matches
    open(victim, "wb").write(bytes(data))
    model, _ = model_lib.build_model(32, weights="none")
    with pytest.raises(AdmodError, match=f"Shard '{victim}' is corrupt"):
        steps._score(model, out["validation"], 32, 8)


@pytest.mark.parametrize("error", [
    OSError(errno.ENOSPC, "No space left on device", "/gcs/root/run/split/train/shard-3"),
    shutil.Error([("a", "/b", "[Errno 28] No space left on device")]),
])
def test_a_full_disk_is_one_sentence(error, capsys):
    assert "The disk is full" in disk_full(error)
    assert "'/gcs/root/run/split/train/shard-3'" in disk_full(error) or "'/b'" in disk_full(error)

    def writes():
        raise error

    with pytest.raises(SystemExit) as exited:
        exit_on_user_error(writes)
    assert exited.value.code == USER_ERROR_STATUS
    message = capsys.readouterr().err
    assert message.startswith("admod: The disk is full") and message.count("\n") == 1
    assert disk_full(ValueError("something else")) is None
