"""One odd file, a missing credential, a corrupt shard or a full disk: reported, never a
traceback."""

import errno
import re
import os
import shutil
import sqlite3
import tempfile

import pytest
from PIL import Image

from admod import images, records, split, steps, storage
from admod import model as model_lib
from admod.defaults import CLASS_NAMES
from admod.errors import USER_ERROR_STATUS, AdmodError, disk_full, exit_on_user_error, writes_into
from tests.support.splitting import run_split
from admod.options import ImageRules
from admod import split_steps
from tests.support import splitting


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
    config = splitting.split_config(val_fraction=0.3, test_fraction=0.0, seed=1, min_image_side=32,
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


def _flip_a_byte(path):
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF  # the record's checksum no longer matches
    open(path, "wb").write(bytes(data))


def _cut_the_last_record(path):
    """Cut cleanly after a whole record: every checksum holds, one record fewer."""
    frames = list(records._read_frames(path, framed=True))
    with open(path, "wb") as f:
        for frame in frames[:-1]:
            f.write(b"".join(frame))


@pytest.mark.parametrize("damage, named", [
    (_flip_a_byte, "Shard '{victim}' is corrupt"),
    (_cut_the_last_record, "Shard '{victim}' holds {less} records where the split wrote {n}"),
    (lambda path: open(path, "wb").close(), "Shard '{victim}' holds 0 records where the split"
                                           " wrote {n}"),
    (os.remove, "'{folder}' holds {fewer} shards where the split wrote {shards}, so one was "
                "deleted"),
], ids=["a flipped byte", "the last record cut", "emptied", "deleted"])
def test_a_damaged_shard_is_named_in_one_sentence(tmp_path, demo_root, damage, named):
    """TensorFlow names no file: a DataLossError, or FailedPreconditionError ('expected to
    contain N elements but contained only M') for a shard cut cleanly, emptied or deleted."""
    out = {name: str(tmp_path / name) for name in split.SPLITS}
    config = splitting.split_config(val_fraction=0.3, test_fraction=0.0, seed=1, min_image_side=32,
                               max_image_pixels=10**7, shard_size=5)
    split_steps.split_step(data_root=demo_root, out_dirs=out, manifest_path=str(tmp_path / "m.csv"),
                     report_path=str(tmp_path / "r.md"), **config)
    shards = records.shard_names(out["validation"])
    written = records.read_info(out["validation"])["shard_records"]
    n = max(written)
    assert n >= 2
    victim = os.path.join(out["validation"], shards[written.index(n)])
    damage(victim)
    model, _ = model_lib.build_model(32, weights="none")
    expected = named.format(victim=victim, folder=out["validation"], n=n, less=n - 1,
                            shards=len(shards), fewer=len(shards) - 1)
    with pytest.raises(AdmodError, match=re.escape(expected) + ".*--no-cache"):
        steps._score(model, out["validation"], 32, 8)


def test_a_shard_that_info_lists_but_is_gone_stops_before_reading(tmp_path):
    folder = tmp_path / "train"
    folder.mkdir()
    gone = str(tmp_path / "elsewhere" / "part-00-00000.tfrecord")
    records.write_info(str(folder), {"shards": [gone], "shard_records": [3], "count": 3})
    with pytest.raises(AdmodError, match=f"Shard '{re.escape(gone)}', which .*info.json lists, "
                                         "is missing"):
        records.shard_files(str(folder))


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


@pytest.mark.parametrize("full", ["scratch", "out"])
def test_a_full_disk_during_the_split_names_the_folder_that_is_full(tmp_path, demo_root,
                                                                    monkeypatch, full):
    """A write's OSError names no file: the sentence used to say 'its output folder' even when
    TMPDIR, not --out, was full."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    real_write = records.ShardWriter._write
    full_root = str(scratch if full == "scratch" else tmp_path / "out")

    def write(self, *pieces):
        if os.path.abspath(self.folder).startswith(full_root) or (
                full == "out" and ".out.tmp-" in self.folder):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(self, *pieces)

    def disk_usage(path):  # the two folders as two disks, one of them full
        full_disk = str(path).startswith(full_root) or (full == "out" and ".out.tmp-" in path)
        return shutil._ntuple_diskusage(10**10, 10**10, 0 if full_disk else 10**9)

    monkeypatch.setattr(records.ShardWriter, "_write", write)
    monkeypatch.setattr(shutil, "disk_usage", disk_usage)
    with pytest.raises(OSError) as raised:
        split_steps.split_into_folder(data_root=demo_root, out=str(tmp_path / "out"),
                                      **_tiny_split_config())
    message = disk_full(raised.value)
    if full == "scratch":
        assert re.search(f"writing '{re.escape(str(scratch))}/admod-split-[^/]+/part-00000' "
                         "failed; free space there, point TMPDIR at a larger disk", message)
    else:
        assert re.search(f"writing '{re.escape(str(tmp_path))}/.out.tmp-[^/]+/(train|validation)'"
                         " failed; free space there or give the step more disk", message)
    assert sorted(os.listdir(tmp_path)) == ["tmp"] and os.listdir(scratch) == []


def test_a_full_disk_names_the_fullest_of_the_folders_written(tmp_path, monkeypatch):
    roomy, full = tmp_path / "roomy", tmp_path / "full"
    free = {str(roomy): 10**9, str(full): 0}
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(
        0, 0, free[str(path)]))
    roomy.mkdir()
    full.mkdir()
    with pytest.raises(OSError) as raised, writes_into(str(roomy), str(full / "new" / "sub")):
        raise sqlite3.OperationalError("database or disk is full")
    assert raised.value.filename == str(full / "new" / "sub")
    named = OSError(errno.ENOSPC, "No space left on device", "/data/the-file")
    with pytest.raises(OSError) as raised, writes_into(str(roomy)):
        raise named
    assert raised.value is named  # a file name the error carries is kept


def _odd_entries(folder):
    """A named pipe, a unix socket's stand-in (a second pipe), a symlinked folder, an unreadable
    folder and a TIFF: what a shared drive holds besides images."""
    import socket

    os.mkfifo(folder / "pipe.png")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "socket.jpg"))
    os.symlink(folder.parent, folder / "linked_folder")
    (folder / "locked").mkdir()
    Image.new("RGB", (64, 64), "red").save(folder / "locked" / "inside.png")
    os.chmod(folder / "locked", 0)
    Image.new("RGB", (64, 64), "green").save(folder / "tiff_named.png", format="TIFF")
    return server


def test_pipes_sockets_and_folders_are_never_opened_and_each_has_a_reason(tmp_path, demo_root):
    """A named pipe used to hang the split forever (no writer ever comes)."""
    import subprocess
    import sys

    root = _data_root(tmp_path, demo_root)
    server = _odd_entries(root / CLASS_NAMES[0])
    try:
        script = ("import sys; from admod import split; "
                  "from tests.support.splitting import run_split, split_config; "
                  "c = split_config(val_fraction=0.3, test_fraction=0.0, seed=1, "
                  "min_image_side=32, max_image_pixels=10**7); "
                  f"m = run_split({str(root)!r}, {{n: {str(tmp_path)!r} + '/' + n for n in "
                  "split.SPLITS}, c); m.to_csv(sys.argv[1])")
        done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "m.csv")],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        manifest = split.read_manifest(str(tmp_path / "m.csv"))
    finally:
        os.chmod(root / CLASS_NAMES[0] / "locked", 0o755)
        server.close()
    reasons = dict(zip(manifest["uri"].map(os.path.basename), manifest["reason"], strict=True))
    assert reasons["pipe.png"] == reasons["socket.jpg"] == images.NOT_A_FILE
    assert reasons["linked_folder"] == images.NOT_IMAGE_EXTENSION  # listed, not followed
    assert reasons["tiff_named.png"] == images.UNSUPPORTED_FORMAT
    # root reads a mode-0 folder; any other user gets the folder named as unreadable
    assert reasons.get("inside.png") == "" if os.geteuid() == 0 else reasons["locked"] == (
        images.UNREADABLE)


def test_an_unreadable_folder_is_listed_and_named_not_skipped(tmp_path, monkeypatch):
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "a.png").write_bytes(b"x")
    (tmp_path / "locked").mkdir()
    real_scandir = os.scandir

    def scandir(path):
        if os.fsdecode(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    listed = [uri for uri, _, _ in storage.list_file_versions(str(tmp_path))]
    assert listed == [str(tmp_path / "locked") + "/", str(tmp_path / "ok" / "a.png")]
    checked = split.check_file(listed[0], ImageRules())
    assert checked.reason == images.UNREADABLE


def test_what_lies_beside_the_class_folders_is_said(tmp_path, demo_root, caplog):
    root = _data_root(tmp_path, demo_root)
    (root / "maybe_ads").mkdir()
    for i in range(6):
        Image.new("RGB", (64, 64)).save(root / "maybe_ads" / f"{i}.png")
    (root / "README.txt").write_text("notes")
    with caplog.at_level("WARNING"):
        split.list_images(str(root), str(tmp_path / "listing"), 1)
    said = [r.getMessage() for r in caplog.records if "beside the class folders" in r.getMessage()]
    assert len(said) == 1 and "ignored 2 entries" in said[0]
    assert "maybe_ads/" in said[0] and "README.txt" in said[0]


def test_predict_applies_the_splits_rules_and_names_each_file_it_leaves_out(tmp_path):
    from admod import serving_request

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    os.mkfifo(inbox / "pipe.jpg")
    Image.new("RGB", (1, 5000)).save(inbox / "sliver.png")  # excluded as too_small by the split
    Image.new("RGB", (64, 64)).save(inbox / "photo.tif", format="TIFF")
    Image.new("RGB", (64, 64)).save(inbox / "tiff_named.png", format="TIFF")
    (inbox / "notes.txt").write_text("not an image")
    Image.new("RGB", (64, 64), "red").save(inbox / "fine.png")
    found = {os.path.basename(uri): (data, reason) for uri, data, reason in
             serving_request.scorable([str(inbox), str(inbox / "pipe.jpg")])}
    assert found["pipe.jpg"] == (b"", images.NOT_A_FILE)
    assert found["sliver.png"][1] == images.TOO_SMALL
    assert found["photo.tif"][1] == found["notes.txt"][1] == images.NOT_IMAGE_EXTENSION
    assert found["tiff_named.png"][1] == images.UNSUPPORTED_FORMAT
    assert found["fine.png"][1] == "" and found["fine.png"][0]


# --- two splits into one --out (issue 36) -----------------------------------------------------

def _tiny_split_config():
    return splitting.split_config(val_fraction=0.3, test_fraction=0.0, seed=1, min_image_side=32,
                                  max_image_pixels=10**7, shard_size=5)


def test_a_second_split_into_the_same_out_stops_at_once(tmp_path, demo_root, monkeypatch):
    """The loser used to end in 'OSError: [Errno 39] Directory not empty' and leave its whole
    staging copy beside --out."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    os.makedirs(tempfile.tempdir)
    out = str(tmp_path / "out")
    with split_steps._claimed(out):  # the first split, still running
        with pytest.raises(AdmodError, match=f"Another admod split is writing into --out '{out}'"):
            split_steps.split_into_folder(data_root=demo_root, out=out, **_tiny_split_config())
    assert sorted(os.listdir(tmp_path)) == ["tmp"]  # the first split's `out`, empty, went too
    assert os.listdir(tempfile.tempdir) == []


def test_a_split_whose_out_filled_meanwhile_leaves_nothing(tmp_path, demo_root, monkeypatch):
    """Where the file system has no locks (flock refused), the move at the end still refuses."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    os.makedirs(tempfile.tempdir)
    out = tmp_path / "out"

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    def the_other_split_finishes_first(**kwargs):
        (out / "manifest.csv").write_text("the other split's\n")
        return real_split_step(**kwargs)

    real_split_step = split_steps.split_step
    monkeypatch.setattr(split_steps.fcntl, "flock", no_locks)
    monkeypatch.setattr(split_steps, "split_step", the_other_split_finishes_first)
    with pytest.raises(AdmodError, match=f"--out '{out}' is not an empty folder"):
        split_steps.split_into_folder(data_root=demo_root, out=str(out), **_tiny_split_config())
    assert sorted(os.listdir(tmp_path)) == ["out", "tmp"]
    assert os.listdir(out) == ["manifest.csv"] and os.listdir(tempfile.tempdir) == []


# --- the data root is read-only to admod (issue 36, own probes) --------------------------------

def _tree(root):
    return sorted(os.path.relpath(os.path.join(d, n), root)
                  for d, dirs, files in os.walk(root) for n in dirs + files)


def test_a_split_into_the_data_root_is_refused_and_writes_nothing_there(tmp_path, demo_root):
    """--out inside the data root used to write shards into the source folder."""
    before = _tree(demo_root)
    link = tmp_path / "same-data"
    link.symlink_to(demo_root)
    for data, out in ((demo_root, os.path.join(demo_root, CLASS_NAMES[0], "shards")),
                      (str(link), os.path.join(demo_root, "out"))):
        with pytest.raises(AdmodError, match=f"--out '{re.escape(out)}' is inside the data root"):
            split_steps.split_into_folder(data_root=data, out=out, **_tiny_split_config())
    assert _tree(demo_root) == before


def test_an_out_that_cannot_be_made_is_one_sentence():
    with pytest.raises(AdmodError, match="--out '/proc/admod-out' cannot be made"):
        split_steps.split_into_folder(data_root="/tmp", out="/proc/admod-out",
                                      **_tiny_split_config())


@pytest.mark.parametrize("data, registry, inside", [
    ("/data/ads", "/data/ads/models", True),
    ("/data/ads", "/data/ads-models", False),
    ("gs://b/ads", "gs://b/ads/models", True),
    ("gs://b/ads", "gs://b/ads-models", False),
    ("gs://b/ads", "/data/ads/models", False),
])
def test_a_registry_inside_the_data_root_is_refused(data, registry, inside):
    from admod import options

    found = options.problems({"data_root": data, "registry_root": registry})
    assert bool(found) == inside
    if inside:
        assert found == [f"registry_root '{registry}' is inside data_root '{data}', which admod "
                         "only reads: keep the models elsewhere."]


def test_a_class_folder_named_in_another_case_is_pointed_at(tmp_path):
    (tmp_path / "Allowed_Ads").mkdir()
    (tmp_path / CLASS_NAMES[1]).mkdir()
    with pytest.raises(AdmodError, match=f"Class folder '{tmp_path}/allowed_ads' is missing, "
                                         "though there is 'Allowed_Ads'"):
        split.list_images(str(tmp_path), str(tmp_path / "listing"), 1)
