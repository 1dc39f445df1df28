"""Submit and schedule, with no network: Vertex's request body and the Kubeflow API calls."""

import warnings

import pytest
from google.auth.credentials import AnonymousCredentials

from admod.errors import AdmodError
from admod.pipeline import submit
from tests.pipeline.fake_kfp import fake_kfp_server
from tests.pipeline.test_compile import COMMITTED, _compile

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


class _RecordingVertexApi:
    """Stands in for the Vertex AI API client: records the CreatePipelineJob request."""

    def __init__(self):
        self.requests = []

    def create_pipeline_job(self, parent, pipeline_job, pipeline_job_id=None, **kwargs):
        self.requests.append({"parent": parent, "job": pipeline_job, "id": pipeline_job_id})
        pipeline_job.name = f"{parent}/pipelineJobs/{pipeline_job_id}"
        return pipeline_job


def test_vertex_job_request_body(bucket, tmp_path):
    vertex_file, _ = _compile(tmp_path, "--platform", "vertex")
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


def test_cache_applies_to_the_training_steps_only(bucket, tmp_path):
    vertex_file, _ = _compile(tmp_path, "--platform", "vertex")
    settings = submit.RunSettings(str(vertex_file), PARAMS, f"gs://{bucket.name}/root",
                                  training_cache=True)
    job = submit.vertex_job(settings, "proj", "europe-west4", credentials=AnonymousCredentials())
    api = job.api_client = _RecordingVertexApi()
    submit.submit_vertex(job, settings)
    (request,) = api.requests
    assert _cached_steps(request["job"].pipeline_spec) == {"train-head", "fine-tune"}


def test_vertex_refuses_a_kubeflow_compile_and_a_local_root():
    settings = submit.RunSettings(COMMITTED, PARAMS, "gs://b/root")
    with pytest.raises(AdmodError, match="compile it with 'admod compile --platform vertex'"):
        submit.vertex_job(settings, "proj", "us-central1", credentials=AnonymousCredentials())


def test_vertex_needs_a_gcs_pipeline_root(tmp_path):
    vertex_file, _ = _compile(tmp_path, "--platform", "vertex")
    settings = submit.RunSettings(str(vertex_file), PARAMS, "/local/runs")
    with pytest.raises(AdmodError, match="is not a gs:// URI"):
        submit.vertex_job(settings, "proj", "us-central1", credentials=AnonymousCredentials())


@pytest.fixture
def kfp_api():
    warnings.simplefilter("ignore", FutureWarning)
    with fake_kfp_server() as (server, host):
        yield server, submit.kubeflow_client(host, "team-a")


def _posts(server, suffix):
    return [body for method, path, _, body in server.requests if method == "POST" and path.endswith(suffix)]


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
    assert "exec-train-head" in spec["platform_spec"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def test_kubeflow_cache_never_reaches_split_evaluate_or_push(kfp_api):
    server, client = kfp_api
    for cache, expected in ((True, {"train-head", "fine-tune"}), (False, set())):
        settings = submit.RunSettings(COMMITTED, PARAMS, "gs://ads-bucket/root", training_cache=cache)
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
    submit.pause_kubeflow_schedule(client, "rr-1")
    assert ("POST", "/apis/v2beta1/recurringruns/rr-1:disable") in [(m, p) for m, p, _, _ in server.requests]


def test_schedule_from_the_command_line(kfp_api, tmp_path):
    from admod.pipeline.cli import main

    server, _ = kfp_api
    host = f"http://127.0.0.1:{server.server_address[1]}"
    params = tmp_path / "params.yaml"
    params.write_text("data_root: gs://ads-bucket/ads\nregistry_root: gs://ads-bucket/registry\n")
    assert main(["schedule", "create", "--platform", "kubeflow", "--host", host, "--cron",
                 "30 2 * * *", "--pipeline-file", COMMITTED, "--params-file", str(params),
                 "-p", "head_epochs=5", "--pipeline-root", "gs://ads-bucket/root"]) == 0
    (recurring,) = _posts(server, "/recurringruns")
    assert recurring["trigger"]["cron_schedule"]["cron"] == "0 30 2 * * *"
    assert recurring["runtime_config"]["parameters"] == {
        "data_root": "gs://ads-bucket/ads", "registry_root": "gs://ads-bucket/registry", "head_epochs": 5}


def test_vertex_schedule_request_body(bucket, tmp_path, monkeypatch):
    from google.cloud import aiplatform

    vertex_file, _ = _compile(tmp_path, "--platform", "vertex")
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
