"""--image resolved to its digest through a registry's own API (a fake Docker Registry HTTP API
v2 on 127.0.0.1 with a token service, as Artifact Registry and Docker Hub answer), and a tag
refused at submit when it cannot be resolved."""

import pytest

from admod.errors import USER_ERROR_STATUS, AdmodError
from admod.pipeline import cli, compiled, image_digest
from tests.support.local_server import JsonHandler, serving
from tests.support.fake_kfp import fake_kfp_server

DIGEST = "sha256:" + "ab" * 32


class _Registry(JsonHandler):
    """HEAD /v2/<repo>/manifests/<tag>: 401 with a Bearer challenge unless the token is
    right, then the digest of the tags it holds; GET /token: the token."""

    def do_HEAD(self):
        self.server.requests.append(("HEAD", self.path, self.headers.get("Accept", "")))
        if self.headers.get("Authorization") != "Bearer pull-token":
            self.send_response(401)
            realm = f"http://127.0.0.1:{self.server.server_address[1]}/token"
            self.send_header("WWW-Authenticate", f'Bearer realm="{realm}",service="fake",'
                                                 'scope="repository:team/trainer:pull"')
            self.end_headers()
            return
        tag = self.path.rsplit("/", 1)[1]
        self.send_response(200 if tag in self.server.tags else 404)
        if tag in self.server.tags:
            self.send_header("Docker-Content-Digest", self.server.tags[tag])
        self.end_headers()

    def do_GET(self):
        self.server.requests.append(("GET", self.path, ""))
        self._reply({"token": "pull-token"} if self.path.startswith("/token") else {}, 200)


@pytest.fixture
def registry():
    with serving(_Registry, requests=[], tags={"7": DIGEST}) as (server, url):
        yield server, url.replace("http://", "")


def test_a_tag_resolves_to_its_digest_through_the_token_service(registry):
    server, host = registry
    assert image_digest.resolve(f"{host}/team/trainer:7") == f"{host}/team/trainer:7@{DIGEST}"
    methods = [method for method, _, _ in server.requests]
    assert methods == ["HEAD", "GET", "HEAD"]  # challenged, token, then the manifest
    assert "application/vnd.oci.image.index.v1+json" in server.requests[-1][2]
    pinned = f"{host}/team/trainer@{DIGEST}"
    assert image_digest.resolve(pinned) == pinned  # by digest already: no request
    assert len(server.requests) == 3


def test_an_unknown_tag_or_a_silent_registry_is_one_sentence(registry):
    _, host = registry
    with pytest.raises(AdmodError, match=f"--image '{host}/team/trainer:8' is a tag that can "
                                         f"move .*{host} has no tag '8' in team/trainer"):
        image_digest.resolve(f"{host}/team/trainer:8")
    with pytest.raises(AdmodError, match="did not answer.*--image-by-tag"):
        image_digest.resolve("127.0.0.1:9/team/trainer:7")


@pytest.mark.parametrize("reference, expected", [
    ("europe-docker.pkg.dev/p/r/trainer:7", ("europe-docker.pkg.dev", "p/r/trainer", "7")),
    ("localhost:5000/trainer", ("localhost:5000", "trainer", "latest")),
    ("python:3.11-slim", ("registry-1.docker.io", "library/python", "3.11-slim")),
    ("team/trainer:1", ("registry-1.docker.io", "team/trainer", "1"))])
def test_references_are_read_as_docker_reads_them(reference, expected):
    assert image_digest.parts(reference) == expected


def test_submit_compiles_with_the_digest_and_compile_keeps_a_tag_it_cannot_resolve(
        registry, tmp_path, capsys):
    _, host = registry
    params = ["-p", "data_root=gs://b/ads", "-p", "registry_root=gs://b/r",
              "--pipeline-root", "gs://b/root"]
    with fake_kfp_server() as (kfp, kfp_host):
        assert cli.main(["submit", "--platform", "kubeflow", "--host", kfp_host,
                         "--image", f"{host}/team/trainer:7", *params]) == 0
        spec = [body for method, path, _, body in kfp.requests
                if method == "POST" and path.endswith("/runs")][0]["pipeline_spec"]
    images = {e["container"]["image"]
              for e in spec["pipeline_spec"]["deploymentSpec"]["executors"].values()}
    assert images == {f"{host}/team/trainer:7@{DIGEST}"}
    out = str(tmp_path / "p.yaml")
    assert cli.main(["compile", "-o", out, "--image", f"{host}/team/trainer:9"]) == 0
    assert "warning: --image" in capsys.readouterr().err
    assert compiled.pipeline_images(out) == {f"{host}/team/trainer:9"}


def test_submit_refuses_a_tag_it_cannot_resolve_or_a_compiled_tag(registry, tmp_path, capsys):
    _, host = registry
    params = ["-p", "data_root=gs://b/ads", "-p", "registry_root=gs://b/r",
              "--pipeline-root", "gs://b/root"]
    with fake_kfp_server() as (kfp, kfp_host):
        submit = ["submit", "--platform", "kubeflow", "--host", kfp_host, *params]
        assert cli.main([*submit, "--image", f"{host}/team/trainer:8"]) == USER_ERROR_STATUS
        assert "has no tag '8'" in capsys.readouterr().err
        out = str(tmp_path / "p.yaml")
        cli.main(["compile", "-o", out, "--image", f"{host}/team/trainer:9"])
        capsys.readouterr()
        assert cli.main([*submit, "--pipeline-file", out]) == USER_ERROR_STATUS
        assert "a tag that can move" in capsys.readouterr().err
        assert cli.main([*submit, "--pipeline-file", out, "--image-by-tag"]) == 0
        assert len([1 for method, path, _, _ in kfp.requests
                    if method == "POST" and path.endswith("/runs")]) == 1
