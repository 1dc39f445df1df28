"""Submit and schedule, with no network: Vertex's request body and the Kubeflow API calls."""

import re
import warnings

import pytest
from google.auth.credentials import AnonymousCredentials

from admod.errors import USER_ERROR_STATUS
from admod.errors import AdmodError
from admod.pipeline import compiled, submit
from tests.support.fake_kfp import fake_kfp_server
from tests.pipeline.test_compile import COMMITTED

PARAMS = {"data_root": "gs://ads-bucket/ads", "registry_root": "gs://ads-bucket/registry",
          "head_epochs": 10}
SA = "trainer@proj.iam.gserviceaccount.com"


@pytest.mark.parametrize("cron, expected", [("0 3 * * 1", "0 0 3 * * 1"),
                                            ("*/15 * * * *", "0 */15 * * * *")])
def test_cron_conversion(cron, expected):
    assert submit.to_kfp_cron(cron) == expected


@pytest.mark.parametrize("cron", ["0 3 * *", "0 0 3 * * 1"])
def test_cron_with_the_wrong_number_of_fields(cron):
    with pytest.raises(AdmodError, match="standard five"):
        submit.to_kfp_cron(cron)


@pytest.fixture(scope="module")
def vertex_file(tmp_path_factory):
    """The pipeline compiled for Vertex AI, as `admod compile --platform vertex` compiles it."""
    path = str(tmp_path_factory.mktemp("vertex") / "pipeline.yaml")
    compiled.write_pipeline(path, platform="vertex")
    return path


class _RecordingVertexApi:
    """Stands in for the Vertex AI API client: records the CreatePipelineJob request."""

    def __init__(self):
        self.requests = []

    def create_pipeline_job(self, parent, pipeline_job, pipeline_job_id=None, **kwargs):
        self.requests.append({"parent": parent, "job": pipeline_job, "id": pipeline_job_id})
        pipeline_job.name = f"{parent}/pipelineJobs/{pipeline_job_id}"
        self.job = pipeline_job
        return pipeline_job

    def get_pipeline_job(self, name, **kwargs):
        self.job.state = self.state
        return self.job


def test_vertex_job_request_body(bucket, vertex_file):
    root = f"gs://{bucket.name}/pipeline-root"  # the SDK checks the bucket (emulator) exists
    settings = submit.RunSettings(str(vertex_file), PARAMS, root, "admod-weekly", False, SA)
    job = submit.vertex_job(settings, "proj", "europe-west4", {"team": "moderation"},
                            credentials=AnonymousCredentials())
    api = job.api_client = _RecordingVertexApi()
    name = submit.submit_vertex(job, settings, network="projects/123/global/networks/vpc")
    (request,) = api.requests
    body = request["job"]
    assert request["parent"] == "projects/proj/locations/europe-west4"
    assert name.endswith(request["id"])
    assert body.display_name == "admod-weekly"
    assert body.service_account == SA and body.network == "projects/123/global/networks/vpc"
    assert dict(body.labels)["team"] == "moderation"
    assert body.runtime_config.gcs_output_directory == root
    values = dict(body.runtime_config.parameter_values)
    assert values["data_root"] == PARAMS["data_root"] and values["head_epochs"] == 10
    assert _cached_steps(body.pipeline_spec) == set()  # --no-cache: the training steps too


def _cached_steps(pipeline_spec) -> set:
    """The steps of a submitted spec that may reuse a cached result, nested DAGs included."""
    pipeline_spec = dict(pipeline_spec)
    dags = [pipeline_spec["root"]] + [c for c in dict(pipeline_spec["components"]).values()
                                      if "dag" in c]
    return {name for dag in dags for name, task in dict(dag["dag"]["tasks"]).items()
            if dict(task.get("cachingOptions", {})).get("enableCache", False)}


def test_cache_applies_to_the_split_and_training_steps_only(bucket, vertex_file):
    settings = submit.RunSettings(str(vertex_file), PARAMS, f"gs://{bucket.name}/root",
                                  training_cache=True)
    job = submit.vertex_job(settings, "proj", "europe-west4", credentials=AnonymousCredentials())
    api = job.api_client = _RecordingVertexApi()
    submit.submit_vertex(job, settings)
    (request,) = api.requests
    assert _cached_steps(request["job"].pipeline_spec) == {
        "check-images", "gather-parts", "merge-bucket", "split", "train-head", "fine-tune"}


def test_vertex_refuses_a_kubeflow_compile_and_a_local_root():
    settings = submit.RunSettings(COMMITTED, PARAMS, "gs://b/root")
    with pytest.raises(AdmodError, match="compile it with 'admod compile --platform vertex'"):
        submit.vertex_job(settings, "proj", "us-central1", credentials=AnonymousCredentials())


def test_vertex_needs_a_gcs_pipeline_root(vertex_file):
    settings = submit.RunSettings(str(vertex_file), PARAMS, "/local/runs")
    with pytest.raises(AdmodError, match="is not a gs:// URI"):
        submit.vertex_job(settings, "proj", "us-central1", credentials=AnonymousCredentials())


@pytest.fixture
def kfp_api():
    warnings.simplefilter("ignore", FutureWarning)
    with fake_kfp_server() as (server, host):
        yield server, submit.kubeflow_client(host, "team-a")


def _posts(server, suffix):
    return [body for method, path, _, body in server.requests
            if method == "POST" and path.endswith(suffix)]


def test_kubeflow_submit(kfp_api):
    server, client = kfp_api
    settings = submit.RunSettings(COMMITTED, PARAMS, "gs://ads-bucket/root", "admod-now", None, SA)
    assert submit.submit_kubeflow(client, settings, "admod", "team-a") == "run-1"
    (experiment,) = _posts(server, "/experiments")
    assert experiment == {"display_name": "admod", "namespace": "team-a"}
    (run,) = _posts(server, "/runs")
    assert run["display_name"] == "admod-now" and run["experiment_id"] == "exp-1"
    assert run["runtime_config"]["parameters"]["data_root"] == PARAMS["data_root"]
    assert run["runtime_config"]["pipeline_root"] == "gs://ads-bucket/root"
    assert run["service_account"] == SA
    spec = run["pipeline_spec"]  # the compiled spec and its Kubernetes platform settings
    assert spec["pipeline_spec"]["pipelineInfo"]["name"] == "admod-resnet50-ad-moderation"
    kubernetes = spec["platform_spec"]["platforms"]["kubernetes"]
    assert "exec-train-head" in kubernetes["deploymentSpec"]["executors"]


def test_kubeflow_refuses_a_root_the_fanned_out_merge_cannot_read(kfp_api):
    server, client = kfp_api
    settings = submit.RunSettings(COMMITTED, PARAMS, "abfs://container/root")
    with pytest.raises(AdmodError, match="--pipeline-root 'abfs://container/root' is not a "
                                         "gs://, s3:// or minio:// URI: the split's merge-bucket"):
        submit.submit_kubeflow(client, settings, "admod", "team-a")
    assert _posts(server, "/runs") == []  # nothing was sent
    for root in ("minio://mlpipeline/v2/artifacts", "s3://team-bucket/root", None):
        submit.submit_kubeflow(client, submit.RunSettings(COMMITTED, PARAMS, root), "admod",
                               "team-a")
    assert len(_posts(server, "/runs")) == 3


def test_kubeflow_cache_never_reaches_listing_evaluate_or_push(kfp_api):
    server, client = kfp_api
    cacheable = {"check-images", "gather-parts", "merge-bucket", "split", "train-head",
                 "fine-tune"}
    for cache, expected in ((True, cacheable), (False, set())):
        settings = submit.RunSettings(COMMITTED, PARAMS, "gs://ads-bucket/root",
                                      training_cache=cache)
        submit.submit_kubeflow(client, settings, "admod", "team-a")
        run = _posts(server, "/runs")[-1]
        assert _cached_steps(run["pipeline_spec"]["pipeline_spec"]) == expected


def test_kubeflow_schedule_list_and_pause(kfp_api):
    server, client = kfp_api
    settings = submit.RunSettings(COMMITTED, PARAMS, "gs://ads-bucket/root", "admod-weekly")
    assert submit.schedule_kubeflow(client, settings, "admod", "0 3 * * 1", "team-a") == "rr-1"
    (recurring,) = _posts(server, "/recurringruns")
    assert recurring["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * 1"
    assert int(recurring["max_concurrency"]) == 1 and recurring["no_catchup"] is True
    assert recurring["runtime_config"]["parameters"]["registry_root"] == PARAMS["registry_root"]
    assert submit.list_kubeflow_schedules(client) == [("rr-1", "admod-weekly", "ENABLED")]
    for action in ("pause", "resume", "delete"):
        submit.change_kubeflow_schedule(client, action, "rr-1")
    calls = [(m, p) for m, p, _, _ in server.requests]
    assert ("POST", "/apis/v2beta1/recurringruns/rr-1:disable") in calls
    assert ("POST", "/apis/v2beta1/recurringruns/rr-1:enable") in calls
    assert ("DELETE", "/apis/v2beta1/recurringruns/rr-1") in calls


def test_schedule_from_the_command_line(kfp_api, tmp_path):
    from admod.pipeline.cli import main

    server, _ = kfp_api
    host = f"http://127.0.0.1:{server.server_address[1]}"
    params = tmp_path / "params.yaml"
    params.write_text("data_root: gs://ads-bucket/ads\nregistry_root: gs://ads-bucket/registry\n")
    assert main(["schedule", "create", "--platform", "kubeflow", "--host", host, "--cron",
                 "30 2 * * *", "--image", "europe-docker.pkg.dev/p/r/trainer:7", "--image-by-tag",
                 "--params-file",
                 str(params),
                 "-p", "head_epochs=5", "--pipeline-root", "gs://ads-bucket/root"]) == 0
    (recurring,) = _posts(server, "/recurringruns")
    assert recurring["trigger"]["cron_schedule"]["cron"] == "0 30 2 * * *"
    assert recurring["runtime_config"]["parameters"] == {
        "data_root": "gs://ads-bucket/ads", "registry_root": "gs://ads-bucket/registry",
        "head_epochs": 5}


def test_vertex_schedule_request_body(bucket, monkeypatch, vertex_file):
    from google.cloud import aiplatform

    settings = submit.RunSettings(str(vertex_file), PARAMS, f"gs://{bucket.name}/root",
                                  "admod-weekly", None, SA)
    job = submit.vertex_job(settings, "proj", "us-central1", credentials=AnonymousCredentials())
    requests = []

    class RecordingScheduleApi:
        def create_schedule(self, parent, schedule, timeout=None):
            requests.append((parent, schedule))
            schedule.name = f"{parent}/schedules/123"
            return schedule

    monkeypatch.setattr(aiplatform.PipelineJobSchedule, "_instantiate_client",
                        classmethod(lambda cls, *args, **kwargs: RecordingScheduleApi()))
    name = submit.schedule_vertex(job, settings, "0 3 * * 1")
    (parent, schedule), = requests
    assert name == "projects/proj/locations/us-central1/schedules/123"
    assert schedule.cron == "0 3 * * 1" and schedule.max_concurrent_run_count == 1
    created = schedule.create_pipeline_job_request.pipeline_job
    assert created.service_account == SA
    assert dict(created.runtime_config.parameter_values)["registry_root"] == PARAMS["registry_root"]


CLOUD = ["-p", "data_root=gs://ads-bucket/ads", "-p", "registry_root=gs://ads-bucket/registry",
         "--pipeline-root", "gs://ads-bucket/root", "--image-by-tag"]


def _kubeflow_cli(server, *args):
    from admod.pipeline.cli import main

    host = f"http://127.0.0.1:{server.server_address[1]}"
    return main(["submit", "--platform", "kubeflow", "--host", host, *args]), host


def test_kubeflow_submit_compiles_with_the_image_and_gpus_and_prints_the_run_url(kfp_api, capsys):
    server, _ = kfp_api
    status, host = _kubeflow_cli(server, "--image", "europe-docker.pkg.dev/p/r/trainer:7",
                                 "--gpu-type", "nvidia-l4", "--gpu-count", "2", *CLOUD)
    assert status == 0
    assert f"{host}/#/runs/details/run-1" in capsys.readouterr().out
    spec = _posts(server, "/runs")[-1]["pipeline_spec"]
    executors = spec["pipeline_spec"]["deploymentSpec"]["executors"]
    images = {e["container"]["image"] for e in executors.values()}
    assert images == {"europe-docker.pkg.dev/p/r/trainer:7"}
    accelerator = executors["exec-train-head"]["container"]["resources"]["accelerator"]
    assert accelerator["resourceCount"] == "2"
    kubernetes = spec["platform_spec"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert kubernetes["exec-train-head"]["nodeSelector"]["labels"] == {
        "cloud.google.com/gke-accelerator": "nvidia-l4"}


@pytest.mark.parametrize("args, words", [
    ([*CLOUD], ["placeholder image", "--image"]),  # the default image, not asked for
    (["--image", "i:1", "-p", "data_root=/home/me/ads", "-p", "registry_root=gs://b/r"],
     ["data_root='/home/me/ads'", "gs://"]),
    (["--image", "i:1", "-p", "data_root=gs://b/ads"], ["registry_root is missing"]),
    (["--image", "i:1", "--label", "team", *CLOUD], ["Label 'team'", "KEY=VALUE"]),
    (["--image", "i:1", "--pipeline-file", "nowhere.yaml", *CLOUD], ["nowhere.yaml"]),
])
def test_cloud_submits_refuse_what_would_fail_there(kfp_api, capsys, args, words):
    server, _ = kfp_api
    from admod.pipeline.cli import main

    platform = ["--platform", "vertex", "--project", "p"] if "--label" in args else [
        "--platform", "kubeflow", "--host", f"http://127.0.0.1:{server.server_address[1]}"]
    assert main(["submit", *platform, *args]) == USER_ERROR_STATUS
    message = capsys.readouterr().err
    assert all(word in message for word in words), message
    assert _posts(server, "/runs") == []  # nothing was sent


def test_the_placeholder_image_runs_when_named(kfp_api):
    from admod.components import DEFAULT_IMAGE

    server, _ = kfp_api
    assert _kubeflow_cli(server, "--image", DEFAULT_IMAGE, *CLOUD)[0] == 0


@pytest.mark.parametrize("state, status", [("SUCCEEDED", 0), ("FAILED", 1)])
def test_kubeflow_wait_exits_with_the_runs_status(kfp_api, capsys, state, status):
    server, _ = kfp_api
    server.run_state = state
    assert _kubeflow_cli(server, "--image", "i:1", "--wait", *CLOUD)[0] == status
    if status:
        assert "Run run-1 ended FAILED" in capsys.readouterr().err


def test_kubeflow_token_and_ca_certificate(kfp_api, tmp_path):
    server, _ = kfp_api
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    _kubeflow_cli(server, "--image", "i:1", "--token-file", str(token), *CLOUD)
    assert server.headers[-1]["authorization"] == "Bearer s3cret"
    with pytest.raises(AdmodError, match="--ca-cert .* is not a file"):
        submit.kubeflow_client("https://kfp.example.com", ca_cert=str(tmp_path / "missing.pem"))


def test_kubeflow_client_passes_the_iap_client_id(monkeypatch):
    import kfp

    seen = {}
    monkeypatch.setattr(kfp, "Client", lambda **kwargs: seen.update(kwargs))
    submit.kubeflow_client("https://kfp.example.com/pipeline", "team", iap_client_id="123.apps")
    assert seen["client_id"] == "123.apps" and seen["namespace"] == "team"


@pytest.mark.parametrize("state, fails", [("PIPELINE_STATE_SUCCEEDED", False),
                                          ("PIPELINE_STATE_FAILED", True)])
def test_vertex_wait_and_run_url(bucket, state, fails, vertex_file):
    from google.cloud.aiplatform_v1.types import PipelineState

    settings = submit.RunSettings(str(vertex_file), PARAMS, f"gs://{bucket.name}/root")
    job = submit.vertex_job(settings, "proj", "europe-west4", credentials=AnonymousCredentials())
    api = job.api_client = _RecordingVertexApi()
    name = submit.submit_vertex(job, settings)
    api.state = PipelineState[state]
    url = submit.vertex_run_url(name)
    assert url.startswith("https://console.cloud.google.com/vertex-ai/locations/europe-west4/"
                          "pipelines/runs/") and url.endswith("?project=proj")
    if fails:
        with pytest.raises(AdmodError, match=re.escape(f"ended PIPELINE_STATE_FAILED: see {url}")):
            submit.follow_vertex(job, poll_seconds=0)
    else:
        submit.follow_vertex(job, poll_seconds=0)


def test_a_compiled_file_runs_as_compiled(kfp_api, capsys):
    from admod.components import DEFAULT_IMAGE

    server, _ = kfp_api
    assert _kubeflow_cli(server, "--pipeline-file", COMMITTED, "--image", "other:1",
                         *CLOUD)[0] == USER_ERROR_STATUS
    assert "already compiled" in capsys.readouterr().err
    # the placeholder image
    assert _kubeflow_cli(server, "--pipeline-file", COMMITTED, *CLOUD)[0] == USER_ERROR_STATUS
    with_image = ("--pipeline-file", COMMITTED, "--image", DEFAULT_IMAGE, *CLOUD)
    assert _kubeflow_cli(server, *with_image)[0] == 0


def test_vertex_submit_names_the_registry_model_and_experiment_in_the_runs_project(tmp_path):
    from admod.pipeline import cli, submit
    from admod.pipeline.commands import cloud

    tensorboard = "projects/proj/locations/europe-west4/tensorboards/77"
    args = cli.build_parser().parse_args([
        "submit", "--platform", "vertex", "--project", "proj", "--region", "europe-west4",
        "--image", "i:1", "--experiment", "admod-ads", "--tensorboard", tensorboard,
        "-p", "vertex_model=admod-ads", *CLOUD])
    values = submit.prepare(cloud.request(args), str(tmp_path)).parameters
    assert values["vertex_project"] == "proj" and values["vertex_location"] == "europe-west4"
    assert values["experiment"] == "admod-ads" and values["vertex_tensorboard"] == tensorboard
    assert values["vertex_model"] == "admod-ads"


def test_kubeflow_submit_refuses_a_vertex_model_without_its_project(kfp_api, capsys):
    server, _ = kfp_api
    assert _kubeflow_cli(server, "--image", "i:1", "-p", "vertex_model=admod-ads",
                         *CLOUD)[0] == USER_ERROR_STATUS
    assert "needs vertex_project and vertex_location" in capsys.readouterr().err
    assert _posts(server, "/runs") == []
    assert _kubeflow_cli(server, "--image", "i:1", *CLOUD)[0] == 0
    assert _posts(server, "/experiments")[-1]["display_name"] == "admod"  # the KFP default


def _split_tasks(server) -> set[str]:
    spec = _posts(server, "/runs")[-1]["pipeline_spec"]["pipeline_spec"]
    return {name for name in spec["root"]["dag"]["tasks"] if "split" in name} | (
        {"check-images"} if "exec-check-images" in spec["deploymentSpec"]["executors"] else set())


@pytest.mark.parametrize("tag, split_tasks", [
    ("2.17.0", {"split", "check-images"}), ("2.14.0", {"split", "check-images"}),
    ("2.5.0", {"split-in-one-task"})])
def test_kubeflow_submit_compiles_for_the_backend_the_api_reports(kfp_api, capsys, tag,
                                                                  split_tasks):
    """Before 2.14 the backend cannot collect a loop's artifacts: the split is one task."""
    server, _ = kfp_api
    server.tag_name = tag
    assert _kubeflow_cli(server, "--image", "i:1", *CLOUD)[0] == 0
    assert f"Kubeflow Pipelines {tag} at" in capsys.readouterr().out
    assert _split_tasks(server) == split_tasks


@pytest.mark.parametrize("tag, args, words", [
    ("2.2.0", [], ["Kubeflow Pipelines 2.2.0 is older than 2.5.0", "Kubeflow 1.10"]),
    ("unknown", [], ["reports its release as 'unknown'", "--kfp-version"]),
    ("2.17.0", ["--kfp-version", "2.4.1"], ["2.4.1 is older than 2.5.0"]),
    ("2.17.0", ["--kfp-version", "two"], ["--kfp-version 'two' is not a Kubeflow Pipelines"]),
    ("2.5.0", ["--pipeline-file", COMMITTED], ["fans the split out", "--kfp-version 2.5.0"]),
])
def test_kubeflow_submit_refuses_a_backend_it_cannot_run_on(kfp_api, capsys, tag, args, words):
    from admod.components import DEFAULT_IMAGE

    server, _ = kfp_api
    server.tag_name = tag
    image = [] if args[:1] == ["--pipeline-file"] else ["--image", "i:1"]
    extra = ["--image", DEFAULT_IMAGE] if not image else []
    assert _kubeflow_cli(server, *image, *extra, *args, *CLOUD)[0] == USER_ERROR_STATUS
    message = capsys.readouterr().err
    assert all(word in message for word in words), message
    assert _posts(server, "/runs") == []  # nothing was sent


def test_an_unknown_release_can_be_named(kfp_api):
    server, _ = kfp_api
    server.tag_name = "unknown"
    assert _kubeflow_cli(server, "--image", "i:1", "--kfp-version", "2.14.0", *CLOUD)[0] == 0
    assert _split_tasks(server) == {"split", "check-images"}


def test_each_platform_takes_the_stores_its_pods_reach():
    """Kubeflow's steps read gs://, s3:// and a stock install's minio:// (with the store's
    secret); Vertex AI's only Cloud Storage."""
    for store in ("gs://b/", "s3://b/", "minio://mlpipeline/"):
        submit.check_cloud_parameters({"data_root": store + "ads", "registry_root": store + "r"})
    with pytest.raises(AdmodError, match="data_root='s3://b/ads' is not a gs:// URI: a cloud "
                                         "run's steps on vertex"):
        submit.check_cloud_parameters({"data_root": "s3://b/ads", "registry_root": "gs://b/r"},
                                      "vertex")
    with pytest.raises(AdmodError, match="registry_root='/home/me/r' is not a gs:// or s3:// or "
                                         "minio:// URI"):
        submit.check_cloud_parameters({"data_root": "gs://b/ads", "registry_root": "/home/me/r"})
