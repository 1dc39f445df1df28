"""Object-storage faults through a fault-injecting proxy in front of the emulator: transient
faults are retried to identical results, lasting ones end in one sentence naming the URI."""

import contextlib
import json

import pytest

from admod import registry, split, storage
from admod.errors import AdmodError
from tests.admod.test_registry import _FakeBlob, _FakeBucket
from tests.conftest import upload_folder
from tests.support.fault_proxy import fault_proxy
from tests.support.splitting import run_split
from tests.support import splitting


@contextlib.contextmanager
def _through(monkeypatch, gcs_host, faults=None, then=None):
    with fault_proxy(gcs_host, faults, then) as (server, proxy):
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy)
        storage.gcs_client.cache_clear()
        try:
            yield server
        finally:
            storage.gcs_client.cache_clear()


def _short_retries(monkeypatch):
    """The client's default retry waits 1 s, then up to 60 s between tries and gives up after
    120 s; a test's waits 0.01 s, then up to 0.05 s, and gives up after 1.5 s."""
    from google.cloud.storage.retry import DEFAULT_RETRY

    monkeypatch.setattr(DEFAULT_RETRY, "_timeout", 1.5)
    monkeypatch.setattr(DEFAULT_RETRY, "_initial", 0.01)
    monkeypatch.setattr(DEFAULT_RETRY, "_maximum", 0.05)


def test_transient_faults_give_identical_results(bucket, gcs_host, demo_root, monkeypatch,
                                                 tmp_path):
    data = upload_folder(demo_root, bucket, "ads")
    config = splitting.split_config(val_fraction=0.3, test_fraction=0.0, seed=1, min_image_side=32,
                               max_image_pixels=10**7, workers=1)
    clean = run_split(data, {n: str(tmp_path / "a" / n) for n in split.SPLITS}, config)
    _short_retries(monkeypatch)
    with _through(monkeypatch, gcs_host, faults=["503", "429", "drop", None] * 6) as server:
        faulty = run_split(data, {n: str(tmp_path / "b" / n) for n in split.SPLITS}, config)
    assert server.seen > len(clean)  # faults were met, and retried
    assert faulty.equals(clean)


def test_storage_that_keeps_failing_is_one_sentence(bucket, gcs_host, monkeypatch):
    bucket.blob("x.jpg").upload_from_string(b"data")
    _short_retries(monkeypatch)
    with _through(monkeypatch, gcs_host, then="503"):
        with pytest.raises(AdmodError, match=f"Cloud Storage did not answer for 'gs://{bucket.name}/x.jpg'"):
            storage.read_bytes(f"gs://{bucket.name}/x.jpg")


def test_a_read_that_hangs_gives_up_in_one_sentence(bucket, gcs_host, monkeypatch):
    """A Cloud Storage read cannot block a check-images pod forever: each request gives up
    after storage.READ_TIMEOUT_S (here 0.5 s; the server stalls 8 s, which the client's own
    default timeout, 60 s, would wait out), then the retries, then one sentence."""
    bucket.blob("slow.jpg").upload_from_string(b"data")
    _short_retries(monkeypatch)
    monkeypatch.setattr(storage, "READ_TIMEOUT_S", 0.5)
    with _through(monkeypatch, gcs_host, then="stall"):
        with pytest.raises(AdmodError, match=f"gs://{bucket.name}/slow.jpg"):
            storage.read_bytes(f"gs://{bucket.name}/slow.jpg")


class _LostReplyBlob(_FakeBlob):
    """The champion write lands, its reply is lost, the client's retry meets the precondition
    our own write just moved: PreconditionFailed, though champion.json holds ours."""

    def upload_from_string(self, data, if_generation_match=None, **kwargs):
        from google.api_core import exceptions

        current = self.bucket.objects.get(self.name, (None, 0))[1]
        self.bucket.objects[self.name] = (data, current + 1)  # the first attempt landed
        raise exceptions.PreconditionFailed("generation mismatch (the retry)")


def test_a_lost_reply_to_the_champion_write_is_success(monkeypatch):
    fake = _FakeBucket(_LostReplyBlob)
    client = type("C", (), {"bucket": lambda s, n: fake})()
    monkeypatch.setattr(storage, "gcs_client", lambda: client)
    registry.set_champion("gs://b/reg", "v1", expected=None)
    assert json.loads(fake.objects["reg/champion.json"][0])["version"] == "v1"


class _MovedWhileReadingBlob(_FakeBlob):
    """champion.json changes between reading its generation and downloading it."""

    def download_as_bytes(self, if_generation_match=None):
        from google.api_core import exceptions

        raise exceptions.PreconditionFailed("generation mismatch (changed while reading)")


def test_a_pointer_that_moves_while_read_is_a_conflict_in_one_sentence(monkeypatch):
    fake = _FakeBucket(_MovedWhileReadingBlob)
    fake.objects["reg/champion.json"] = (b'{"version": "v1"}', 1)
    client = type("C", (), {"bucket": lambda s, n: fake})()
    monkeypatch.setattr(storage, "gcs_client", lambda: client)
    with pytest.raises(registry.ChampionChanged,
                       match="v2 is stored complete but not made champion"):
        registry.set_champion("gs://b/reg", "v2", expected="v1")
