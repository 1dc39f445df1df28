"""Submitting and scheduling pipeline.yaml on Vertex AI Pipelines or Kubeflow Pipelines."""

import contextlib
import dataclasses
import logging
import os
import tempfile
import time

from admod import components, parameters
from admod.options import DEFAULTS
from admod.errors import AdmodError, RunFailed
from admod.pipeline import compiled, image_digest
from admod.pipeline.platform import (CACHEABLE_STEPS, FAN_IN_KFP, KUBEFLOW, OLDEST_KFP, VERTEX,
                                     version_tuple)

log = logging.getLogger(__name__)


@dataclasses.dataclass
class RunSettings:
    """What every run or schedule needs, on either platform."""
    pipeline_file: str
    parameters: dict
    pipeline_root: str | None = None
    display_name: str = "admod"
    training_cache: bool | None = None  # None: each step's compiled caching policy
    service_account: str | None = None
    scratch: str = ""  # a folder the caller removes, for files made to send; "": a new one


@dataclasses.dataclass(frozen=True)
class Request:
    """What a user asks of a cloud run or schedule, as given (the flags of submit and
    schedule create)."""
    platform: str
    parameters: dict  # -p and --params-file, the former over the latter
    pipeline_file: str | None = None  # None: compiled on the fly with what follows
    image: str | None = None
    image_by_tag: bool = False
    gpu_type: str | None = None
    gpu_count: int = 1
    store_secret: str | None = None
    store_endpoint: str = ""
    pipeline_root: str | None = None
    display_name: str = "admod"
    cache: bool | None = None
    service_account: str | None = None


def prepare(request: Request, scratch: str, kfp_version: str = "") -> RunSettings:
    """What a cloud run or schedule needs, every input checked before anything is sent;
    `kfp_version`: the Kubeflow Pipelines backend it goes to; files made go to `scratch`."""
    check_cloud_parameters(request.parameters, request.platform)  # before the registry is asked
    pipeline_file = request.pipeline_file
    if not pipeline_file:
        pipeline_file = os.path.join(scratch, f"pipeline-{request.platform}.yaml")
        print(compiled.write_pipeline(pipeline_file,
                                      image_digest.pinned(request.image, request.image_by_tag),
                                      request.platform, request.gpu_type, request.gpu_count,
                                      kfp_version, request.store_secret, request.store_endpoint))
    elif not os.path.isfile(pipeline_file):
        raise AdmodError(f"Pipeline file '{pipeline_file}' does not exist: pass a file written "
                         "by 'admod compile', or drop --pipeline-file to compile on the fly.")
    elif (request.gpu_type or request.store_secret is not None or request.store_endpoint
          or (request.image and {request.image} != compiled.pipeline_images(pipeline_file))):
        raise AdmodError(f"'{pipeline_file}' is already compiled, for its own image, GPUs and "
                         "store: drop --image, --gpu-type and --store-*, or drop --pipeline-file "
                         "to compile with them.")
    values = parameters.checked(request.parameters, compiled.declared_parameters(pipeline_file))
    check_compiled_for(pipeline_file, request.platform)
    if kfp_version:
        check_backend(pipeline_file, kfp_version)
    check_image(pipeline_file, components.DEFAULT_IMAGE, request.image)
    if not request.image_by_tag:
        check_pinned(pipeline_file)
    return RunSettings(pipeline_file, values, request.pipeline_root, request.display_name,
                       request.cache, request.service_account, scratch)


def pipeline_to_submit(settings: RunSettings) -> str:
    """The pipeline file to send: the compiled one, or a copy whose training steps' caching is
    set to `settings.training_cache`. Never a run-level override: Vertex and kfp.Client apply
    that to every step, the never-cached ones included."""
    if settings.training_cache is None:
        return settings.pipeline_file
    import yaml

    documents = compiled.documents(settings.pipeline_file)
    spec = documents[0]
    dags = [spec["root"]] + [c for c in spec["components"].values() if "dag" in c]
    for dag in dags:
        for name, task in dag["dag"]["tasks"].items():
            if name in CACHEABLE_STEPS:
                task["cachingOptions"] = {"enableCache": True} if settings.training_cache else {}
    path = os.path.join(settings.scratch or tempfile.mkdtemp(),
                        "submitted-" + os.path.basename(settings.pipeline_file))
    with open(path, "w") as f:
        yaml.safe_dump_all(documents, f, sort_keys=False)
    return path


# Parameters that name storage the steps read and write: in the cloud a local path would point
# into a pod's disk and be lost with it.
STORAGE_PARAMETERS = ("data_root", "registry_root")
# What each platform's pods can reach: Vertex AI mounts Cloud Storage only; Kubeflow's steps
# read S3 and its MinIO too (the store's secret: platform.Platform).
CLOUD_STORES = {VERTEX: ("gs://",), KUBEFLOW: ("gs://", "s3://", "minio://")}
POLL_SECONDS = 30


# Vertex AI passes at most 100 artifacts to a dsl.Collected input (kubeflow/kubeflow#7513):
# gather-parts collects one part's URI per check-images task, held to the same limit.
VERTEX_MAX_FAN_IN = 100


def check_cloud_parameters(parameters: dict, platform: str = KUBEFLOW) -> None:
    """Refuses a cloud run whose data or registry is not in Cloud Storage, or that fans out
    wider than its platform collects."""
    workers = parameters.get("split_workers", DEFAULTS.split_workers)
    if platform == VERTEX and isinstance(workers, int) and workers > VERTEX_MAX_FAN_IN:
        raise AdmodError(f"split_workers={workers} is more than Vertex AI collects into one step "
                         f"({VERTEX_MAX_FAN_IN} artifacts): pass -p split_workers="
                         f"{VERTEX_MAX_FAN_IN} or fewer.")
    stores = CLOUD_STORES[platform]
    for name in STORAGE_PARAMETERS:
        value = str(parameters.get(name) or "")
        if not value:
            raise AdmodError(f"{name} is missing: pass -p {name}=gs://BUCKET/PATH or put it in "
                             "--params-file.")
        if not value.startswith(stores):
            raise AdmodError(f"{name}='{value}' is not a {' or '.join(stores)} URI: a cloud "
                             f"run's steps on {platform} would write it inside a pod and lose "
                             f"it; use {stores[0]}BUCKET/PATH.")


def check_image(pipeline_file: str, placeholder: str, explicit_image: str | None) -> None:
    """Refuses to run the steps in the placeholder image unless it was asked for by name."""
    if placeholder in compiled.pipeline_images(pipeline_file) and explicit_image != placeholder:
        raise AdmodError(
            f"The steps would run in the placeholder image {placeholder}: build and push the "
            "trainer image (make images IMAGE=REGISTRY/PATH TAG=TAG) and pass --image "
            "REGISTRY/PATH:TAG, or --image with the placeholder's name if that image is yours.")


def check_pinned(pipeline_file: str) -> None:
    """Refuses a compiled pipeline whose steps name their image by a tag that can move."""
    tags = sorted(i for i in compiled.pipeline_images(pipeline_file)
                  if not image_digest.is_pinned(i))
    if tags:
        raise AdmodError(f"'{pipeline_file}' runs its steps in {tags[0]}, a tag that can move "
                         "(Kubeflow's cache keys on the name, and each pod pulls what the tag "
                         "names then): compile it with --image REF (resolved to its digest) or "
                         f"REF@sha256:..., or pass {image_digest.BY_TAG_FLAG}.")


def to_kfp_cron(cron: str) -> str:
    """A standard 5-field cron ("min hour day month weekday") as the 6-field form KFP expects
    (seconds first)."""
    fields = cron.split()
    if len(fields) != 5:
        raise AdmodError(f"Cron '{cron}' has {len(fields)} fields: write the standard five "
                         "(minute hour day-of-month month day-of-week), e.g. '0 3 * * 1'.")
    return " ".join(["0", *fields])


# --- Vertex AI ----------------------------------------------------------------------------

def check_compiled_for(pipeline_file: str, platform: str) -> None:
    found = compiled.compiled_for(pipeline_file)
    if found != platform:
        raise AdmodError(f"'{pipeline_file}' was compiled for {found}, not {platform}: compile "
                         f"it with 'admod compile --platform {platform}' (admod submit does so "
                         "by itself without --pipeline-file).")


def vertex_job(settings: RunSettings, project: str, region: str, labels: dict | None = None,
               credentials=None):
    from google.cloud import aiplatform

    check_compiled_for(settings.pipeline_file, VERTEX)
    if not (settings.pipeline_root or "").startswith("gs://"):
        raise AdmodError(f"pipeline_root '{settings.pipeline_root}' is not a gs:// URI: Vertex AI "
                         "keeps every step's artifacts in Cloud Storage; pass --pipeline-root gs://BUCKET/PATH.")
    return aiplatform.PipelineJob(
        display_name=settings.display_name, template_path=pipeline_to_submit(settings),
        pipeline_root=settings.pipeline_root, parameter_values=settings.parameters,
        enable_caching=None, labels=labels or {}, project=project,
        location=region, credentials=credentials)


def submit_vertex(job, settings: RunSettings, network: str | None = None) -> str:
    job.submit(service_account=settings.service_account, network=network)
    log.info("submitted %s", job.resource_name)
    return job.resource_name


def vertex_run_url(resource_name: str) -> str:
    """The console page of projects/P/locations/L/pipelineJobs/ID."""
    parts = resource_name.split("/")
    project, region, job_id = parts[1], parts[3], parts[-1]
    return (f"https://console.cloud.google.com/vertex-ai/locations/{region}/pipelines/runs/"
            f"{job_id}?project={project}")


def follow_vertex(job, poll_seconds: float = POLL_SECONDS) -> None:
    """Waits for the run to end; an AdmodError unless it succeeded."""
    from google.cloud.aiplatform_v1.types import PipelineState

    while not job.done():
        time.sleep(poll_seconds)
    if job.state != PipelineState.PIPELINE_STATE_SUCCEEDED:
        raise RunFailed(f"Run {job.resource_name} ended {job.state.name}: see "
                         f"{vertex_run_url(job.resource_name)} for the failing step's log.")


def schedule_vertex(job, settings: RunSettings, cron: str, network: str | None = None) -> str:
    to_kfp_cron(cron)  # the same check; Vertex takes the 5-field form itself
    schedule = job.create_schedule(cron=cron, display_name=settings.display_name,
                                   max_concurrent_run_count=1,
                                   service_account=settings.service_account, network=network)
    return schedule.resource_name


def list_vertex_schedules(project: str, region: str,
                          credentials=None) -> list[tuple[str, str, str]]:
    from google.cloud import aiplatform

    schedules = aiplatform.PipelineJobSchedule.list(project=project, location=region,
                                                    credentials=credentials)
    return [(s.resource_name, s.display_name, str(s.state)) for s in schedules]


def change_vertex_schedule(action: str, name: str, project: str, region: str,
                           credentials=None) -> None:
    """pause, resume or delete a Vertex schedule."""
    from google.cloud import aiplatform

    schedule = aiplatform.PipelineJobSchedule.get(name, project=project, location=region,
                                                  credentials=credentials)
    getattr(schedule, action)()


# --- Kubeflow Pipelines -------------------------------------------------------------------

PROBE_TIMEOUT_S = (3, 6)  # connect, read: a host that does not answer is said within 10 s


def kubeflow_client(host: str, namespace: str | None = None, token: str | None = None,
                    iap_client_id: str | None = None, ca_cert: str | None = None):
    """A client for the KFP API at `host`: from outside the cluster with a bearer token (e.g. a
    service account's, or Dex's), through Identity-Aware Proxy (its OAuth client id), and with
    a private CA's certificate. The host is asked once first, briefly (kfp.Client's own check
    retries for about 30 s and then raises a traceback)."""
    import kfp

    if ca_cert and not os.path.isfile(ca_cert):
        raise AdmodError(f"--ca-cert '{ca_cert}' is not a file: pass the PEM file of the CA that "
                         "signed the Kubeflow endpoint's certificate.")
    if not iap_client_id:  # through IAP, kfp fetches the token itself
        probe_kubeflow(host, token, ca_cert)
    return kfp.Client(host=host, namespace=namespace or "kubeflow", existing_token=token,
                      client_id=iap_client_id, ssl_ca_cert=ca_cert)


def probe_kubeflow(host: str, token: str | None = None, ca_cert: str | None = None) -> None:
    """One GET of the API's healthz: refuses, in one sentence, a host that does not answer or
    that refuses the credentials, before anything is compiled."""
    import requests

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"{host.rstrip('/')}/apis/v2beta1/healthz"
    try:
        reply = requests.get(url, headers=headers, timeout=PROBE_TIMEOUT_S,
                             verify=ca_cert or True, allow_redirects=False)
    except requests.exceptions.RequestException as error:
        raise AdmodError(f"The Kubeflow Pipelines API at {host} did not answer "
                         f"({type(error).__name__}): check --host (https://HOST/pipeline), the "
                         "network or VPN, and --ca-cert for a private CA.") from None
    _refuse_status(reply.status_code, f"The Kubeflow Pipelines API at {host}")


def _refuse_status(status: int, who: str) -> None:
    """One sentence for an HTTP status that says what to do, or nothing for success."""
    if status in (401, 403) or 300 <= status < 400:  # a redirect: to a login page
        raise AdmodError(f"{who} refused our credentials (HTTP {status}): pass --token-file "
                         "with a valid bearer token (or --iap-client-id behind IAP), and give "
                         "the account access to the namespace.")
    if status == 404:
        raise AdmodError(f"{who} was not found (HTTP 404): check --host, which ends in "
                         "/pipeline for a full Kubeflow install.")
    if status == 429:
        raise AdmodError(f"{who} is refusing requests for now (HTTP 429, rate limited): wait a "
                         "minute and run again.")
    if status >= 500:
        raise AdmodError(f"{who} failed (HTTP {status}): check the Kubeflow Pipelines API "
                         "server's health, then run again.")


@contextlib.contextmanager
def kubeflow_errors(host: str):
    """The KFP client's errors during a command, as one sentence each."""
    import urllib3
    from kfp_server_api.exceptions import ApiException

    try:
        yield
    except ApiException as error:
        _refuse_status(error.status or 0, f"The Kubeflow Pipelines API at {host}")
        raise AdmodError(f"The Kubeflow Pipelines API at {host} refused the request (HTTP "
                         f"{error.status}: {str(error.reason)[:160]}): check the parameters "
                         "and the namespace.") from None
    except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as error:
        raise AdmodError(f"The Kubeflow Pipelines API at {host} did not answer "
                         f"({type(error).__name__}): check --host and the network, then run "
                         "again.") from None


def check_vertex_access(project: str | None, region: str) -> None:
    """Google Cloud credentials found, before anything is compiled."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        google.auth.default()
    except DefaultCredentialsError:
        raise AdmodError(f"No Google Cloud credentials to use Vertex AI in project '{project}' "
                         f"({region}): run 'gcloud auth application-default login', or set "
                         "GOOGLE_APPLICATION_CREDENTIALS to a service account key file.") \
            from None


@contextlib.contextmanager
def vertex_errors(project: str | None, region: str):
    """Vertex AI's and Google auth's errors during a command, as one sentence each."""
    from google.api_core import exceptions
    from google.auth import exceptions as auth_exceptions

    where = f"project '{project}' ({region})"
    try:
        yield
    except (exceptions.PermissionDenied, exceptions.Unauthenticated,
            auth_exceptions.RefreshError) as error:
        raise AdmodError(f"Vertex AI refused this account in {where} ({type(error).__name__}): "
                         "grant it roles/aiplatform.user there, or run 'gcloud auth "
                         "application-default login' again.") from None
    except exceptions.NotFound as error:
        raise AdmodError(f"Vertex AI found no {where} ({str(error).splitlines()[0][:120]}): "
                         "check --project and --region, and that the Vertex AI API is "
                         "enabled.") from None
    except (exceptions.ResourceExhausted, exceptions.TooManyRequests) as error:
        raise AdmodError(f"Vertex AI refused the request in {where} for lack of quota "
                         f"({str(error).splitlines()[0][:120]}): wait and run again, or ask for "
                         "more quota.") from None
    except (exceptions.ServiceUnavailable, exceptions.DeadlineExceeded, exceptions.RetryError,
            auth_exceptions.TransportError) as error:
        raise AdmodError(f"Vertex AI did not answer for {where} ({type(error).__name__}): "
                         "check the network, then run again.") from None


def backend_version(client, host: str) -> str:
    """The Kubeflow Pipelines release the API server reports (its healthz `tag_name`, in every
    2.x backend: backend/src/apiserver/main.go at 2.0.5 to 2.17.0). kfp's typed healthz model
    drops that field, so the raw reply is read."""
    import json

    try:
        reply = client._healthz_api.healthz_service_get_healthz(_preload_content=False)
        tag = str(json.loads(reply.data).get("tag_name", ""))
    except Exception as error:  # kfp_server_api and urllib3 raise several kinds
        raise AdmodError(f"The Kubeflow Pipelines API at {host} did not say its release "
                         f"({str(error).splitlines()[0][:200]}): check --host and the "
                         "credentials, or pass --kfp-version.") from None
    try:
        version_tuple(tag)
    except ValueError:
        raise AdmodError(f"The Kubeflow Pipelines API at {host} reports its release as '{tag}': "
                         f"pass --kfp-version (e.g. {OLDEST_KFP}) to say which backend it is.") \
            from None
    return tag.lstrip("v")


def check_backend(pipeline_file: str, version: str) -> None:
    """Refuses a backend older than admod supports, or a fanned-out spec for a backend that
    cannot collect a loop's artifacts; both before anything is sent."""
    if version_tuple(version) < version_tuple(OLDEST_KFP):
        raise AdmodError(f"Kubeflow Pipelines {version} is older than {OLDEST_KFP}, the oldest "
                         "backend admod runs on (it does not substitute the run's id and drops "
                         f"retries): upgrade the backend (Kubeflow 1.10 ships {OLDEST_KFP}).")
    if version_tuple(version) < version_tuple(FAN_IN_KFP) and compiled.fans_in(pipeline_file):
        raise AdmodError(f"'{pipeline_file}' fans the split out, which Kubeflow Pipelines "
                         f"{version} cannot collect (from {FAN_IN_KFP}): compile it with "
                         f"'admod compile --kfp-version {version}', or drop --pipeline-file.")


def kubeflow_run_url(host: str, run_id: str) -> str:
    return f"{host.rstrip('/')}/#/runs/details/{run_id}"


def follow_kubeflow(client, run_id: str, host: str, poll_seconds: float = POLL_SECONDS) -> None:
    """Waits for the run to end; an AdmodError unless it succeeded."""
    import datetime

    run = client.wait_for_run_completion(run_id, timeout=datetime.timedelta.max.total_seconds(),
                                         sleep_duration=poll_seconds)
    if (run.state or "").upper() != "SUCCEEDED":
        raise RunFailed(f"Run {run_id} ended {run.state}: see {kubeflow_run_url(host, run_id)} "
                         "for the failing step's log.")


def check_kubeflow_root(settings: RunSettings) -> None:
    """The fanned-out split's merge-bucket tasks read the checked partitions by URI: refuse a
    pipeline root they cannot read before anything runs."""
    if not compiled.fans_in(settings.pipeline_file):
        return
    root = settings.pipeline_root
    if root and not root.startswith(CLOUD_STORES[KUBEFLOW]):
        raise AdmodError(f"--pipeline-root '{root}' is not a gs://, s3:// or minio:// URI: the "
                         "split's merge-bucket tasks read the checked partitions from the "
                         "store; pass --pipeline-root gs://BUCKET/PATH (or s3://), or "
                         "--kfp-version 2.5.0 for the split in one task.")


def submit_kubeflow(client, settings: RunSettings, experiment: str,
                    namespace: str | None = None) -> str:
    check_compiled_for(settings.pipeline_file, KUBEFLOW)
    check_kubeflow_root(settings)
    result = client.create_run_from_pipeline_package(
        pipeline_to_submit(settings), arguments=settings.parameters,
        run_name=settings.display_name, experiment_name=experiment, namespace=namespace,
        pipeline_root=settings.pipeline_root, enable_caching=None,
        service_account=settings.service_account)
    log.info("submitted run %s", result.run_id)
    return result.run_id


def schedule_kubeflow(client, settings: RunSettings, experiment: str, cron: str,
                      namespace: str | None = None) -> str:
    check_compiled_for(settings.pipeline_file, KUBEFLOW)
    check_kubeflow_root(settings)
    experiment_id = client.create_experiment(experiment, namespace=namespace).experiment_id
    recurring = client.create_recurring_run(
        experiment_id=experiment_id, job_name=settings.display_name,
        cron_expression=to_kfp_cron(cron), max_concurrency=1, no_catchup=True,
        params=settings.parameters, pipeline_package_path=pipeline_to_submit(settings),
        pipeline_root=settings.pipeline_root, enable_caching=None,
        service_account=settings.service_account)
    return recurring.recurring_run_id


def list_kubeflow_schedules(client, namespace: str | None = None) -> list[tuple[str, str, str]]:
    response = client.list_recurring_runs(namespace=namespace, page_size=100)
    return [(r.recurring_run_id, r.display_name, str(r.status))
            for r in (response.recurring_runs or [])]


def change_kubeflow_schedule(client, action: str, recurring_run_id: str) -> None:
    """pause, resume or delete a recurring run."""
    {"pause": client.disable_recurring_run, "resume": client.enable_recurring_run,
     "delete": client.delete_recurring_run}[action](recurring_run_id)
