"""The cloud commands' edges: no credentials, a host that does not answer, 401/403, an unknown
project and quota refusals each end in one sentence (exit 3, no traceback) within 10 s that
says what to do; credentials and host are checked before compiling; nothing is left in TMPDIR."""

import socket
import tempfile
import time

import pytest

from admod.errors import USER_ERROR_STATUS
from admod.pipeline import cli, compiled, submit
from tests.support.fake_kfp import fake_kfp_server

IMAGE = ["--image", "europe-docker.pkg.dev/p/r/trainer:7"]
CLOUD = ["-p", "data_root=gs://ads-bucket/ads", "-p", "registry_root=gs://ads-bucket/registry",
         "--pipeline-root", "gs://ads-bucket/root", "--image-by-tag"]


@pytest.fixture
def tmpdir_watched(tmp_path, monkeypatch):
    """TMPDIR set to an empty folder; the test checks it is empty again at its end."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    yield folder
    monkeypatch.setattr(tempfile, "tempdir", None)


@pytest.fixture
def compiles(monkeypatch):
    """The calls to compiled.write_pipeline, which a refused command never reaches."""
    calls = []
    real = compiled.write_pipeline
    monkeypatch.setattr(compiled, "write_pipeline",
                        lambda *a, **k: calls.append(a) or real(*a, **k))
    return calls


def _said(capsys, status: int, started: float) -> str:
    err = capsys.readouterr().err
    assert status == USER_ERROR_STATUS, err
    errors = [line for line in err.splitlines() if line.startswith("admod:")]
    assert "Traceback" not in err and len(errors) == 1, err  # kfp's own log lines aside
    assert time.monotonic() - started < 10
    return errors[0]


def _closed_port() -> int:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        return unused.getsockname()[1]


@pytest.mark.parametrize("command", [["submit"], ["schedule", "create", "--cron", "0 3 * * 1"],
                                     ["schedule", "list"]])
def test_a_kubeflow_host_that_does_not_answer(command, capsys, tmpdir_watched, compiles):
    host = f"http://127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    extra = [*IMAGE, *CLOUD] if command[-1] != "list" else []
    status = cli.main([*command, "--platform", "kubeflow", "--host", host, *extra])
    assert f"The Kubeflow Pipelines API at {host} did not answer" in _said(capsys, status,
                                                                            started)
    assert compiles == [] and list(tmpdir_watched.iterdir()) == []


@pytest.mark.parametrize("status_code", [401, 403])
def test_kubeflow_credentials_refused(status_code, capsys, tmpdir_watched, compiles):
    with fake_kfp_server() as (server, host):
        server.refuse["healthz"] = status_code
        started = time.monotonic()
        status = cli.main(["submit", "--platform", "kubeflow", "--host", host, *IMAGE, *CLOUD])
        said = _said(capsys, status, started)
    assert f"refused our credentials (HTTP {status_code}): pass --token-file" in said
    assert compiles == [] and list(tmpdir_watched.iterdir()) == []


def test_kubeflow_rate_limit_while_submitting(capsys, tmpdir_watched):
    with fake_kfp_server() as (server, host):
        server.refuse["runs"] = 429
        started = time.monotonic()
        status = cli.main(["submit", "--platform", "kubeflow", "--host", host, *IMAGE, *CLOUD])
        said = _said(capsys, status, started)
    assert "is refusing requests for now (HTTP 429, rate limited): wait a minute" in said
    assert list(tmpdir_watched.iterdir()) == []  # the pipeline compiled for it is gone too


def test_a_successful_submit_leaves_nothing_in_tmpdir(tmpdir_watched):
    with fake_kfp_server() as (_, host):
        assert cli.main(["submit", "--platform", "kubeflow", "--host", host, *IMAGE, *CLOUD,
                         "--no-cache"]) == 0
    assert list(tmpdir_watched.iterdir()) == []


def test_vertex_without_credentials_before_compiling(monkeypatch, capsys, tmpdir_watched,
                                                     compiles):
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    def no_credentials(*args, **kwargs):
        raise DefaultCredentialsError("none found")

    monkeypatch.setattr(google.auth, "default", no_credentials)
    for command in (["submit"], ["schedule", "create", "--cron", "0 3 * * 1"]):
        started = time.monotonic()
        status = cli.main([*command, "--platform", "vertex", "--project", "proj", *IMAGE, *CLOUD])
        assert "No Google Cloud credentials to use Vertex AI in project 'proj'" in _said(
            capsys, status, started)
    from admod import storage

    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)  # another test's emulator
    storage.gcs_client.cache_clear()
    try:
        status = cli.main(["registry", "sync", "gs://b/registry", "--vertex-model", "admod",
                           "--project", "proj", "--region", "europe-west4"])
    finally:
        storage.gcs_client.cache_clear()
    assert "No Google Cloud credentials" in _said(capsys, status, time.monotonic())
    assert compiles == [] and list(tmpdir_watched.iterdir()) == []


@pytest.mark.parametrize("error, sentence", [
    ("NotFound", "Vertex AI found no project 'proj' (us-central1)"),
    ("PermissionDenied", "Vertex AI refused this account in project 'proj'"),
    ("ResourceExhausted", "for lack of quota"),
    ("TooManyRequests", "for lack of quota"),
    ("ServiceUnavailable", "Vertex AI did not answer")])
def test_vertex_refusals_while_submitting(error, sentence, monkeypatch, capsys, tmpdir_watched):
    import google.auth
    from google.api_core import exceptions
    from google.auth.credentials import AnonymousCredentials

    monkeypatch.setattr(google.auth, "default", lambda *a, **k: (AnonymousCredentials(), "proj"))

    def refused(*args, **kwargs):
        raise getattr(exceptions, error)("refused")

    monkeypatch.setattr(submit, "submit_vertex", refused)
    started = time.monotonic()
    status = cli.main(["submit", "--platform", "vertex", "--project", "proj", *IMAGE, *CLOUD])
    assert sentence in _said(capsys, status, started)
    assert list(tmpdir_watched.iterdir()) == []


def test_serve_manifest_without_store_credentials(no_s3_credentials, capsys):
    started = time.monotonic()
    status = cli.main(["serve-manifest", "--model", "s3://b/registry"])
    assert "No S3 credentials" in _said(capsys, status, started)
