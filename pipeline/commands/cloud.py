"""Runs in the cloud: submit, and scheduled retraining (schedule create | list | pause | resume |
delete), on Vertex AI Pipelines or Kubeflow Pipelines."""

import argparse
import tempfile

from admod.errors import AdmodError
from admod.pipeline.commands import arguments

KFP_EXPERIMENT = "admod"  # the Kubeflow experiment runs are filed under by default


def add(commands) -> None:
    add_submit(commands)
    add_schedule(commands)


def add_submit(commands) -> None:
    p = commands.add_parser("submit", help="run the pipeline on Vertex AI or Kubeflow")
    _platform_flags(p, runs=True)
    p.add_argument("--wait", action="store_true",
                   help="follow the run to its end and exit with its status")
    p.set_defaults(func=submit_command)


def submit_command(args) -> int:
    from admod.pipeline import submit

    _require_target(args)
    # Whatever is compiled or rewritten to send lives in a temporary folder for the command only.
    with tempfile.TemporaryDirectory(prefix="admod-") as scratch, _cloud_errors(args):
        if args.platform == "vertex":
            labels = _labels(args.label)
            submit.check_vertex_access(args.project, args.region)
            settings = submit.prepare(request(args), scratch)
            job = submit.vertex_job(settings, args.project, args.region, labels)
            name = submit.submit_vertex(job, settings, args.network)
            print(f"{name}\n{submit.vertex_run_url(name)}")
            if args.wait:
                submit.follow_vertex(job)
        else:
            client = _kubeflow_client(args)
            settings = submit.prepare(request(args), scratch, _kfp_version(args, client))
            run_id = submit.submit_kubeflow(client, settings, args.experiment or KFP_EXPERIMENT,
                                            args.namespace)
            print(f"{run_id}\n{submit.kubeflow_run_url(args.host, run_id)}")
            if args.wait:
                submit.follow_kubeflow(client, run_id, args.host)
    if args.wait:
        print("the run succeeded")
    return 0


def add_schedule(commands) -> None:
    schedule = commands.add_parser("schedule", help="scheduled retraining").add_subparsers(
        dest="action", required=True)
    p = schedule.add_parser("create", help="a cron schedule (standard 5 fields)")
    p.add_argument("--cron", required=True, help="e.g. '0 3 * * 1': Mondays at 03:00")
    _platform_flags(p, runs=True)
    p.set_defaults(func=schedule_create_command)
    p = schedule.add_parser("list")
    _platform_flags(p, runs=False)
    p.set_defaults(func=schedule_list_command)
    for action in ("pause", "resume", "delete"):
        p = schedule.add_parser(action)
        p.add_argument("schedule", help="schedule resource name (Vertex) or recurring run id "
                       "(Kubeflow)")
        _platform_flags(p, runs=False)
        p.set_defaults(func=schedule_change_command)


def schedule_create_command(args) -> None:
    from admod.pipeline import submit

    _require_target(args)
    with tempfile.TemporaryDirectory(prefix="admod-") as scratch, _cloud_errors(args):
        labels = _labels(args.label)
        if args.platform == "vertex":
            submit.check_vertex_access(args.project, args.region)
            settings = submit.prepare(request(args), scratch)
            job = submit.vertex_job(settings, args.project, args.region, labels)
            print(submit.schedule_vertex(job, settings, args.cron, args.network))
        else:
            client = _kubeflow_client(args)
            settings = submit.prepare(request(args), scratch, _kfp_version(args, client))
            print(submit.schedule_kubeflow(client, settings, args.experiment or KFP_EXPERIMENT,
                                           args.cron, args.namespace))


def schedule_list_command(args) -> None:
    from admod.pipeline import submit

    _require_target(args)
    with _cloud_errors(args):
        if args.platform == "vertex":
            submit.check_vertex_access(args.project, args.region)
            rows = submit.list_vertex_schedules(args.project, args.region)
        else:
            rows = submit.list_kubeflow_schedules(_kubeflow_client(args), args.namespace)
        for row in rows:
            print("\t".join(row))


def schedule_change_command(args) -> None:
    from admod.pipeline import submit

    _require_target(args)
    with _cloud_errors(args):
        if args.platform == "vertex":
            submit.check_vertex_access(args.project, args.region)
            submit.change_vertex_schedule(args.action, args.schedule, args.project, args.region)
        else:
            submit.change_kubeflow_schedule(_kubeflow_client(args), args.action, args.schedule)
    done = {"pause": "paused", "resume": "resumed", "delete": "deleted"}[args.action]
    print(f"{done} {args.schedule}")


def request(args):
    """A run's request from the flags: --params-file, then -p over it, then on Vertex the
    project and region of the Model Registry and Experiments, unless the parameters name
    others."""
    import yaml

    from admod.pipeline import submit

    params = {}
    if args.params_file:
        with open(args.params_file) as f:
            params.update(yaml.safe_load(f) or {})
    params.update(arguments.parse_params(args.param))
    if args.platform == "vertex":
        given = {"vertex_project": args.project, "vertex_location": args.region,
                 "experiment": args.experiment, "vertex_tensorboard": args.tensorboard}
        params.update({name: value for name, value in given.items()
                       if value and name not in params})
    return submit.Request(args.platform, params, args.pipeline_file, args.image,
                          args.image_by_tag, args.gpu_type, args.gpu_count, args.store_secret,
                          args.store_endpoint, args.pipeline_root, args.display_name, args.cache,
                          args.service_account)


def _require_target(args) -> None:
    if args.platform == "vertex" and not args.project:
        raise AdmodError("--project is missing: Vertex AI needs the Google Cloud project to run "
                         "in.")
    if args.platform == "kubeflow" and not args.host:
        raise AdmodError("--host is missing: pass the Kubeflow Pipelines API endpoint, e.g. "
                         "https://HOST/pipeline.")


def _cloud_errors(args):
    """The platform client's errors as one sentence each, for a cloud command."""
    from admod.pipeline import submit

    if args.platform == "vertex":
        return submit.vertex_errors(args.project, args.region)
    return submit.kubeflow_errors(args.host)


def _labels(pairs: list[str]) -> dict:
    return arguments.key_values(pairs, "Label", "KEY=VALUE", "--label team=moderation")


def _kubeflow_client(args):
    from admod.pipeline import submit

    token = None
    if args.token_file:
        with open(args.token_file) as f:
            token = f.read().strip()
    return submit.kubeflow_client(args.host, args.namespace, token, args.iap_client_id,
                                  args.ca_cert)


def _kfp_version(args, client) -> str:
    """The backend's release: --kfp-version, else what the API server reports."""
    from admod.pipeline import platform, submit

    if args.kfp_version:
        try:
            platform.version_tuple(args.kfp_version)
        except ValueError as error:
            raise AdmodError(str(error)) from None
        return args.kfp_version.lstrip("v")
    version = submit.backend_version(client, args.host)
    print(f"Kubeflow Pipelines {version} at {args.host}")
    return version


def _platform_flags(p, runs: bool) -> None:
    p.add_argument("--platform", choices=["vertex", "kubeflow"], required=True)
    p.add_argument("--project", help="Vertex: Google Cloud project")
    p.add_argument("--region", default="us-central1", help="Vertex: region")
    p.add_argument("--host", help="Kubeflow: the KFP API endpoint (https://HOST/pipeline)")
    p.add_argument("--namespace", help="Kubeflow: the profile namespace")
    p.add_argument("--token-file", help="Kubeflow: a file holding a bearer token for the API "
                   "(from outside the cluster)")
    p.add_argument("--iap-client-id", help="Kubeflow behind Identity-Aware Proxy: its OAuth "
                   "client id")
    p.add_argument("--ca-cert", help="Kubeflow: the CA certificate (PEM) of the endpoint")
    if not runs:
        return
    p.add_argument("--kfp-version", help="Kubeflow: the backend's release, e.g. 2.5.0 (default: "
                   "what its API reports); before 2.14 the split runs as one task")
    p.add_argument("--pipeline-file", help="a compiled pipeline (default: compile for "
                   "--platform on the fly, with --image/--gpu-type/--gpu-count)")
    p.add_argument("--pipeline-root", help="where step artifacts go (gs://)")
    p.add_argument("--params-file", help="YAML mapping of pipeline parameters")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--display-name", default="admod")
    p.add_argument("--service-account")
    p.add_argument("--cache", action=argparse.BooleanOptionalAction, default=None,
                   help="let check-images, split, train-head and fine-tune reuse cached results "
                   "for unchanged data, or not (default: the compiled policy: they may); "
                   "list-images, evaluate and push always run")
    p.add_argument("--network", help="Vertex: VPC network for the run")
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="Vertex")
    p.add_argument("--experiment", help=f"Kubeflow: the KFP experiment (default "
                   f"{KFP_EXPERIMENT}); Vertex: log the run's parameters and metrics to this "
                   "Vertex AI Experiment (the experiment parameter; default: none)")
    p.add_argument("--tensorboard", help="Vertex: a TensorBoard (projects/P/locations/L/"
                   "tensorboards/ID) for the experiment's per-epoch curves")
    p.add_argument("--image", help="the trainer image every step runs in (required unless "
                   "--pipeline-file names one); a tag is resolved to its digest")
    arguments.image_by_tag_flag(p)
    p.add_argument("--gpu-type", help="GKE accelerator label or Vertex accelerator type")
    p.add_argument("--gpu-count", type=int, default=1)
    arguments.store_flags(p)
