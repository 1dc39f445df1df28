import json
import os
import threading

import pytest

from admod.errors import USER_ERROR_STATUS
from admod import registry, storage


def _model_folder(tmp_path, name, content):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "model.keras").write_bytes(content)
    (folder / "metrics.json").write_text("{}")
    return str(folder)


def test_push_publishes_a_complete_version_and_champion(tmp_path):
    root = str(tmp_path / "registry")
    uri, pushed = registry.push(_model_folder(tmp_path, "m", b"one"), root, None)
    version = os.path.basename(uri)
    assert pushed and registry.complete_versions(root) == [version]
    assert registry.champion(root) == version
    assert json.loads(open(os.path.join(uri, registry.MARKER)).read())["parent"] is None


def test_same_model_twice_is_a_no_op(tmp_path):
    root = str(tmp_path / "registry")
    folder = _model_folder(tmp_path, "m", b"one")
    first = registry.push(folder, root, None)
    assert registry.push(folder, root, os.path.basename(first[0])) == (first[0], False)
    assert len(os.listdir(root)) == 3  # the version, champion.json and its lock file


def test_a_push_killed_mid_copy_leaves_no_version_and_the_next_succeeds(tmp_path, monkeypatch):
    root = str(tmp_path / "registry")
    folder = _model_folder(tmp_path, "m", b"one")
    real_upload = storage.upload_dir

    def dies_half_way(local_dir, dest):
        os.makedirs(dest)
        with open(os.path.join(dest, "model.keras"), "wb") as f:
            f.write(b"on")  # half a file, then the node is preempted
        raise KeyboardInterrupt

    monkeypatch.setattr(storage, "upload_dir", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        registry.push(folder, root, None)
    assert registry.complete_versions(root) == [] and registry.champion(root) is None
    monkeypatch.setattr(storage, "upload_dir", real_upload)
    uri, pushed = registry.push(folder, root, None)
    assert pushed and registry.complete_versions(root) == [os.path.basename(uri)]
    assert open(os.path.join(uri, "model.keras"), "rb").read() == b"one"


def test_two_pushes_racing_leave_one_champion_and_both_versions(tmp_path, monkeypatch):
    """Both pushes read the champion pointer, then each waits (up to a second) for the other to
    have read it too before writing: without the lock both would swap, every time; with it,
    the second reader only reads once the first has written, and is refused."""
    root = str(tmp_path / "registry")
    registry.push(_model_folder(tmp_path, "m0", b"model 0"), root, None)
    first_champion = registry.champion(root)
    folders = [_model_folder(tmp_path, f"m{i}", f"model {i}".encode()) for i in (1, 2)]
    outcomes, start, read = [None, None], threading.Barrier(2), threading.Barrier(2)
    real_read_bytes = storage.read_bytes

    def read_then_pause(uri):
        data = real_read_bytes(uri)
        if uri.endswith(registry.CHAMPION):
            try:
                read.wait(timeout=1)  # the window between read and swap, made wide
            except threading.BrokenBarrierError:
                pass  # the other push is held by the lock: go on alone
        return data

    monkeypatch.setattr(storage, "read_bytes", read_then_pause)

    def push(i):
        start.wait()
        try:
            outcomes[i] = registry.push(folders[i], root, first_champion)[0]
        except registry.ChampionChanged as error:
            outcomes[i] = error

    threads = [threading.Thread(target=push, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o in outcomes if isinstance(o, str)]
    losers = [o for o in outcomes if isinstance(o, registry.ChampionChanged)]
    assert len(winners) == 1 and len(losers) == 1
    assert "stored complete but not made champion" in str(losers[0])
    assert registry.champion(root) == os.path.basename(winners[0])
    assert len(registry.complete_versions(root)) == 3  # every version intact


class _FakeBlob:
    """A GCS blob that enforces if_generation_match, as real GCS does (the emulator does not)."""

    def __init__(self, bucket, name):
        self.bucket, self.name = bucket, name

    @property
    def generation(self):
        return self.bucket.objects[self.name][1]

    def download_as_bytes(self, if_generation_match=None):
        data, generation = self.bucket.objects[self.name]
        self._check(if_generation_match)
        return data

    def upload_from_string(self, data, if_generation_match=None, **kwargs):
        self._check(if_generation_match)
        if self.bucket.before_write:
            self.bucket.before_write()
        self._check(if_generation_match)
        current = self.bucket.objects.get(self.name, (None, 0))[1]
        self.bucket.objects[self.name] = (data, current + 1)

    def _check(self, expected):
        from google.api_core import exceptions
        current = self.bucket.objects.get(self.name, (None, 0))[1]
        if expected is not None and expected != current:
            raise exceptions.PreconditionFailed("generation mismatch")


class _FakeBucket:
    def __init__(self, blob_class=_FakeBlob):
        self.objects, self.before_write, self.blob_class = {}, None, blob_class

    def blob(self, name):
        return self.blob_class(self, name)

    def get_blob(self, name):
        return self.blob_class(self, name) if name in self.objects else None


def test_gcs_champion_uses_a_generation_precondition(monkeypatch):
    bucket = _FakeBucket()
    client = type("C", (), {"bucket": lambda self, n: bucket})()
    monkeypatch.setattr(storage, "gcs_client", lambda: client)
    registry.set_champion("gs://b/reg", "v1", expected=None)
    assert json.loads(bucket.objects["reg/champion.json"][0])["version"] == "v1"

    def someone_else_promotes_v2():  # between our read and our write
        bucket.before_write = None
        bucket.objects["reg/champion.json"] = (b'{"version": "v2"}', 99)

    bucket.before_write = someone_else_promotes_v2
    with pytest.raises(registry.ChampionChanged,
                       match="v3 is stored complete but not made champion"):
        registry.set_champion("gs://b/reg", "v3", expected="v1")
    assert json.loads(bucket.objects["reg/champion.json"][0])["version"] == "v2"
    with pytest.raises(registry.ChampionChanged, match="the champion is now v2, not v1"):
        registry.set_champion("gs://b/reg", "v3", expected="v1")


@pytest.mark.parametrize("pointer, words", [
    (b"", "is empty or corrupt"),
    (b"{not json", "is empty or corrupt"),
    (b'{"version": "../../etc"}', "is not a version folder"),
    (b'{"version": "v20990101-000000-gone"}', "missing or incomplete"),
])
def test_a_bad_champion_pointer_is_refused_never_followed_or_overwritten(tmp_path, pointer, words):
    root = str(tmp_path / "registry")
    uri, _ = registry.push(_model_folder(tmp_path, "m", b"one"), root, None)
    path = os.path.join(root, registry.CHAMPION)
    open(path, "wb").write(pointer)
    with pytest.raises(registry.AdmodError, match=f"{words}.*admod registry set-champion"):
        registry.champion(root)
    with pytest.raises(registry.AdmodError):  # the push refuses to replace it
        registry.push(_model_folder(tmp_path, "n", b"two"), root, None)
    assert open(path, "rb").read() == pointer  # never silently overwritten
    registry.repair_champion(root, os.path.basename(uri))
    assert registry.champion(root) == os.path.basename(uri)


def test_repair_only_points_at_a_complete_version(tmp_path):
    root = str(tmp_path / "registry")
    registry.push(_model_folder(tmp_path, "m", b"one"), root, None)
    with pytest.raises(registry.AdmodError, match="not a complete version"):
        registry.repair_champion(root, "v1-half-written")


def test_a_push_that_died_before_the_champion_update_is_finished_by_the_next(tmp_path, monkeypatch):
    root = str(tmp_path / "registry")
    folder = _model_folder(tmp_path, "m", b"one")
    real = registry.set_champion

    def dies(*args, **kwargs):
        raise KeyboardInterrupt  # the pod goes away after _COMPLETE, before champion.json

    monkeypatch.setattr(registry, "set_champion", dies)
    with pytest.raises(KeyboardInterrupt):
        registry.push(folder, root, None)
    monkeypatch.setattr(registry, "set_champion", real)
    (version,) = registry.complete_versions(root)
    assert registry.champion(root) is None
    uri, new = registry.push(folder, root, None)
    assert not new and os.path.basename(uri) == version and registry.champion(root) == version


def test_versions_are_keyed_by_identity_not_export_bytes(tmp_path):
    root = str(tmp_path / "registry")
    first, _ = registry.push(_model_folder(tmp_path, "a", b"export one"), root, None, key="same")
    again, new = registry.push(_model_folder(tmp_path, "b", b"export two"), root,
                               os.path.basename(first), key="same")
    assert (again, new) == (first, False)


def test_clean_removes_only_old_incomplete_versions(tmp_path):
    import time

    root = tmp_path / "registry"
    uri, _ = registry.push(_model_folder(tmp_path, "m", b"one"), str(root), None)
    for name, age_s in ((DEAD, 3 * 86400), (BEING_WRITTEN, 60)):
        (root / name).mkdir()
        (root / name / "model.keras").write_bytes(b"half")
        os.utime(root / name / "model.keras", (time.time() - age_s, time.time() - age_s))
    stale_tmp = root / ".tmp-abc123"
    stale_tmp.write_bytes(b"{")
    os.utime(stale_tmp, (time.time() - 2 * 86400, time.time() - 2 * 86400))
    assert registry.remove_leftovers(str(root), older_than_s=86400) == [".tmp-abc123", DEAD]
    assert not stale_tmp.exists()
    assert {os.path.basename(uri), BEING_WRITTEN} <= set(os.listdir(root))
    assert DEAD not in os.listdir(root)
    assert registry.champion(str(root)) == os.path.basename(uri)


def test_local_registry_files_follow_the_umask(tmp_path):
    import stat

    previous = os.umask(0o022)
    try:
        uri, _ = registry.push(_model_folder(tmp_path, "m", b"one"), str(tmp_path / "r"), None)
    finally:
        os.umask(previous)
    modes = {p: stat.S_IMODE(os.stat(os.path.join(dirpath, p)).st_mode)
             for dirpath, dirs, files in os.walk(tmp_path / "r") for p in dirs + files}
    assert stat.S_IMODE(os.stat(uri).st_mode) == 0o755
    assert all(mode in (0o644, 0o755) for mode in modes.values()), modes


def test_clean_on_gcs(bucket):
    import time

    root = f"gs://{bucket.name}/registry"
    bucket.blob(f"registry/{DEAD}/model.keras").upload_from_string(b"half")
    bucket.blob("registry/notes/todo.txt").upload_from_string(b"a user's")
    assert registry.leftovers(root, older_than_s=3600, now=time.time() + 7200) == [DEAD]
    assert registry.leftovers(root, older_than_s=3600) == []  # still within the grace period
    registry.remove_leftovers(root, older_than_s=-1)
    assert [b.name for b in bucket.list_blobs(prefix="registry/")] == ["registry/notes/todo.txt"]


DEAD, BEING_WRITTEN = "v20261101-120000-0123abcd-a1b2c3", "v20261203-070000-89abcdef-d4e5f6"


def _old(path, days=3):
    import time

    for folder, _, files in os.walk(path):
        for name in files:
            os.utime(os.path.join(folder, name), (time.time() - days * 86400,) * 2)


def test_clean_touches_only_what_a_push_names_on_a_folder_admod_did_not_write(tmp_path, capsys):
    """A registry holding a user's notes, and a data set given by mistake: nothing of theirs
    is removed; a folder that is no registry is refused; --dry-run removes nothing."""
    from admod.pipeline.cli import main

    root = tmp_path / "registry"
    registry.push(_model_folder(tmp_path, "m", b"one"), str(root), None)
    (root / "notes").mkdir()
    (root / "notes" / "plan.txt").write_text("keep me")
    (root / DEAD).mkdir()
    (root / DEAD / "model.keras").write_bytes(b"half")
    _old(root)
    assert main(["registry", "clean", str(root), "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith(f"would remove 1 leftover(s) of unfinished "
                                              f"pushes: {DEAD}")
    assert (root / DEAD).exists()
    assert main(["registry", "clean", str(root)]) == 0
    assert not (root / DEAD).exists() and (root / "notes" / "plan.txt").read_text() == "keep me"

    data = tmp_path / "dataset"
    for label in ("allowed_ads", "not_allowed_ads"):
        (data / label).mkdir(parents=True)
        (data / label / "ad_00001.png").write_bytes(b"an image")
    _old(data)
    before = sorted(str(p) for p in data.rglob("*"))
    assert main(["registry", "clean", str(data)]) == USER_ERROR_STATUS
    assert "is not an admod registry" in capsys.readouterr().err
    assert sorted(str(p) for p in data.rglob("*")) == before


@pytest.mark.parametrize("action", ["list", "clean"])
def test_list_and_clean_on_a_missing_path_fail(tmp_path, capsys, action):
    from admod.pipeline.cli import main

    assert main(["registry", action, str(tmp_path / "nowhere")]) == USER_ERROR_STATUS
    assert "does not exist" in capsys.readouterr().err


def test_list_works_on_a_broken_registry_it_is_the_repair_tool(tmp_path, capsys):
    from admod.pipeline.cli import main

    root = tmp_path / "registry"
    uri, _ = registry.push(_model_folder(tmp_path, "m", b"one"), str(root), None)
    (root / registry.CHAMPION).write_text('{"version": "v20200101-000000-00000000-000000"}')
    assert main(["registry", "list", str(root)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == os.path.basename(uri)
    assert "missing or incomplete" in captured.err and "set-champion" in captured.err
