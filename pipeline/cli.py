"""The `admod` command line: demo-data, split, compile, run, predict, submit, schedule."""

import argparse
import json
import os
import signal
import sys
import tempfile
import time

from admod import defaults, storage
from admod.options import DEFAULTS
from admod.errors import USER_ERROR_STATUS, AdmodError, RunFailed, say, user_error

DEFAULT_PIPELINE_FILE = "pipeline.yaml"
LOCAL_IMAGE = "admod/trainer:local-cpu"  # what `make image-local` builds
KFP_EXPERIMENT = "admod"  # the Kubeflow experiment runs are filed under by default


def key_values(pairs: list[str], what: str, form: str, example: str) -> dict[str, str]:
    """['a=1', 'b=x'] -> {'a': '1', 'b': 'x'}; a pair without '=' or a key is one sentence
    naming `what` it is, its `form` (NAME=VALUE) and an `example`."""
    found = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise AdmodError(f"{what} '{pair}' is not {form}: write it as, e.g., {example}.")
        found[key.strip()] = value
    return found


def _parse_params(pairs: list[str]) -> dict:
    """-p NAME=VALUE pairs, the values read as YAML scalars (5 is a number, true a boolean)."""
    import yaml

    given = key_values(pairs, "Parameter", "NAME=VALUE", "-p head_epochs=5")
    return {name: yaml.safe_load(value) for name, value in given.items()}


def check_demo_data_target(folder: str, count: int, force: bool = False) -> None:
    """Refuses, before anything is written, a count that makes no data set and a folder whose
    files demo data would overwrite."""
    if count < 2:
        raise AdmodError(f"--count {count} makes no data set: pass 2 or more (one ad of each "
                         "class at least; 600 by default).")
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise AdmodError(f"'{folder}' is a file, not a folder: pass a folder for the demo data.")
    if os.path.isdir(folder) and any(files for _, _, files in os.walk(folder)) and not force:
        raise AdmodError(f"'{folder}' already holds files, which demo data would overwrite: pass "
                         "a new or empty folder, or --force to write over them.")


def cmd_demo_data(args) -> None:
    from admod.demo_data import write_demo_data

    check_demo_data_target(args.folder, args.count, args.force)
    counts = write_demo_data(args.folder, count=args.count, seed=args.seed)
    print(f"wrote {sum(counts.values())} ads to {args.folder}: {counts}")


def compile_pipeline(output: str, image: str | None = None, platform: str = "kubeflow",
                     gpu_type: str | None = None, gpu_count: int = 1,
                     kfp_version: str = "", store_secret: str | None = None,
                     store_endpoint: str = "") -> str:
    """Compiles the pipeline for `platform` (a Kubeflow Pipelines backend `kfp_version`, empty:
    the newest) with every step in `image` (and, on Kubeflow, the object store's secret and
    endpoint: platform.Platform); returns a summary."""
    from kfp import compiler

    from admod import components
    from admod.pipeline import pipeline
    from admod.pipeline.platform import Platform

    try:
        target = Platform(platform, gpu_type or "", gpu_count, kfp_version=kfp_version or "",
                          store_secret=store_secret, store_endpoint=store_endpoint or "")
    except ValueError as error:
        raise AdmodError(str(error)) from None
    compiler.Compiler().compile(pipeline.build(target, image or components.DEFAULT_IMAGE), output)
    backend = f" {kfp_version}" if kfp_version else ""
    split = "fanned out" if target.fan_in else "in one task"
    return (f"compiled {output} for {target.name}{backend} ({target.gpu_count} x "
            f"{target.gpu_type}; split {split})")


def check_output_file(path: str, what: str = "-o") -> None:
    """A pipeline file path the compiler can write: a .yaml or .json name in a folder that
    exists."""
    folder = os.path.dirname(os.path.abspath(path))
    if not path.endswith((".yaml", ".yml", ".json")):
        raise AdmodError(f"{what} '{path}' does not end in .yaml or .json, the pipeline formats: "
                         "name it, e.g., pipeline.yaml.")
    if not os.path.isdir(folder):
        raise AdmodError(f"{what} '{path}': its folder '{folder}' does not exist: create it or "
                         "write the file elsewhere.")


def cmd_compile(args) -> None:
    check_output_file(args.output)
    try:
        image = _pinned_image(args)
    except AdmodError as error:  # compiling needs no registry: said, and the tag kept
        say(f"warning: {error}")
        image = args.image
    print(compile_pipeline(args.output, image, args.platform, args.gpu_type, args.gpu_count,
                           args.kfp_version, args.store_secret, args.store_endpoint))


def _pinned_image(args) -> str | None:
    """--image by digest: as given when it has one or with --image-by-tag, else resolved
    through its registry (printed)."""
    from admod.pipeline import image_digest

    if not args.image or args.image_by_tag or image_digest.is_pinned(args.image):
        return args.image
    pinned = image_digest.resolve(args.image)
    print(f"--image {args.image} is {pinned}")
    return pinned


SPLIT_OPTIONS = ("SplitOptions", "ImageRules", "ListingOptions")  # admod split's flags


def cmd_split(args) -> None:
    from admod import options, split_steps

    classes = [getattr(options, name) for name in SPLIT_OPTIONS]
    split_options, rules, listing = options.from_parameters(
        vars(args), *classes, inputs=("data", "out", "command"))
    split_steps.split_into_folder(data_root=args.data, out=args.out, options=split_options,
                            rules=rules, partitions=listing.split_workers)
    print(f"wrote shards, manifest.csv and report.md under {args.out}")


def _option_flags(parser, class_names) -> None:
    """One flag per parameter of the options named, with its default and description:
    --val-fraction for val_fraction."""
    from admod import options

    for name in class_names:
        for parameter, field in options.parameter_fields(getattr(options, name)).items():
            kind = field.type
            parser.add_argument(f"--{parameter.replace('_', '-')}", dest=parameter,
                                default=field.default,
                                type=None if kind is bool else kind,
                                action=argparse.BooleanOptionalAction if kind is bool else None,
                                help=f"{field.metadata['description']} (default %(default)s)")


def cmd_registry(args) -> None:
    from admod import registry

    if args.action == "list":
        registry.check_registry(args.registry)
        try:
            champion = registry.champion(args.registry)
        except AdmodError as broken:  # list is the repair tool: it lists all the same
            champion = None
            print(f"admod: {broken}", file=sys.stderr)
        for version in registry.complete_versions(args.registry):
            print(f"{version}\t{'champion' if version == champion else ''}".rstrip())
    elif args.action == "clean":
        removed = registry.remove_leftovers(args.registry, args.older_than_hours * 3600,
                                            args.dry_run)
        print(f"{'would remove' if args.dry_run else 'removed'} {len(removed)} leftover(s) of "
              f"unfinished pushes: {' '.join(removed) or 'none'}")
    elif args.action == "sync":
        from admod import vertex_registry, vertex_targets
        from admod.pipeline import submit

        target = vertex_targets.ModelTarget(args.vertex_model, args.project or "",
                                            args.region or "", args.serving_image,
                                            args.default_alias)
        with submit.vertex_errors(args.project, args.region or ""):  # credentials: its client's
            for name in vertex_registry.sync(args.registry, target):
                print(name)
    else:
        registry.repair_champion(args.registry, args.version)
        print(f"champion is now {args.version}")


def cmd_run(args) -> None:
    # A pipeline compiled on the fly lives in a temporary folder for the run only.
    with tempfile.TemporaryDirectory(prefix="admod-") as scratch:
        _run(args, scratch)


def _run(args, scratch: str) -> None:
    from admod import parameters
    from admod.pipeline import compiled, local_run

    params = _parse_params(args.param)
    data = args.data or defaults.LOCAL_DEMO_DATA
    data = data if storage.is_remote(data) else os.path.abspath(data)
    registry = (args.registry if storage.is_remote(args.registry)
                else os.path.abspath(args.registry))
    arguments = local_run.run_arguments(data, registry, params, args.full)
    if args.pipeline_root and storage.is_inside(args.pipeline_root, data):
        raise AdmodError(f"--pipeline-root '{args.pipeline_root}' is inside the data root "
                         f"'{data}', which admod only reads: pass a folder outside it.")
    pipeline_file, runner = args.pipeline_file, None
    image = args.image if args.runner == "docker" else None
    if pipeline_file is None:  # compiled on the fly: runs from any folder, no checkout needed
        pipeline_file = os.path.join(scratch, "pipeline.yaml")
        compile_pipeline(pipeline_file, image)
    elif not os.path.exists(pipeline_file):
        raise AdmodError(f"Pipeline file '{pipeline_file}' does not exist: run 'admod compile' "
                         "first, or drop --pipeline-file to compile on the fly.")
    # Every parameter checked before anything is written (the demo data included).
    arguments = parameters.check(arguments, compiled.declared_parameters(pipeline_file))
    if args.data is None and not os.path.isdir(data):
        from admod.demo_data import write_demo_data
        write_demo_data(data, count=local_run.LOCAL_DEMO_IMAGES, seed=0)
    if not storage.is_remote(data) and not os.path.isdir(data):
        raise AdmodError(f"Data folder '{args.data}' does not exist: pass --data with a folder "
                         "or gs:// or s3:// prefix holding allowed_ads/ and not_allowed_ads/.")
    if args.runner == "docker":
        if not storage.is_remote(registry):
            os.makedirs(registry, exist_ok=True)
        runner = local_run.docker_runner(data, registry, args.container_user)
        print(f"Every step runs in {image} as user {args.container_user}, network off.")
    started = time.monotonic()
    run_dir = local_run.run_local(pipeline_file, arguments, args.pipeline_root, runner,
                                  verbose=args.verbose)
    print(local_run.summary(run_dir))
    print(f"Finished in {time.monotonic() - started:.0f} s.")


def cmd_serve_manifest(args) -> None:
    import yaml

    from admod import kserve

    manifest = kserve.inference_service(args.model, args.name, args.namespace,
                                        args.runtime_version)
    print(f"# served by TF Serving {args.runtime_version} (runtimeVersion: the "
          f"tensorflow/serving:{args.runtime_version} image), not KServe's default 2.6.2, which "
          "cannot load the model")
    print(yaml.safe_dump(manifest, sort_keys=False), end="")


def cmd_predict(args) -> int:
    import csv

    from admod.predict import predict
    from admod.reports import csv_safe

    if args.request_body:
        return _print_request_body(args.inputs)
    if not args.model:
        raise AdmodError("--model is missing: pass a registry_root (its champion) or one of its "
                         "version folders, or --request-body to print a request without scoring.")
    writer = csv.writer(sys.stdout)
    writer.writerow(["uri", "probability", "label"])
    failed = 0
    for uri, probability, label in predict(args.model, args.inputs, args.batch_size):
        if probability is None:
            failed += 1
            print(f"admod: cannot score {uri}: {label}", file=sys.stderr)
        else:
            writer.writerow([csv_safe(uri), f"{probability:.6f}", label])
    return 2 if failed else 0


def _print_request_body(inputs: list[str]) -> int:
    from admod.predict import request_body

    body, refused = request_body(inputs)
    for uri, reason in refused:
        print(f"admod: cannot score {uri}: {reason} (left out of the request)", file=sys.stderr)
    if not body["instances"]:
        raise AdmodError("None of the inputs can be scored: nothing to put in a request.")
    json.dump(body, sys.stdout)
    print()
    return 2 if refused else 0


def _require_target(args) -> None:
    if args.platform == "vertex" and not args.project:
        raise AdmodError("--project is missing: Vertex AI needs the Google Cloud project to run "
                         "in.")
    if args.platform == "kubeflow" and not args.host:
        raise AdmodError("--host is missing: pass the Kubeflow Pipelines API endpoint, e.g. "
                         "https://HOST/pipeline.")


def _settings(args, scratch: str, kfp_version: str = ""):
    """What a cloud run or schedule needs, every input checked before anything is sent;
    `kfp_version`: the Kubeflow Pipelines backend it goes to; files made go to `scratch`."""
    import yaml

    from admod import components, parameters
    from admod.pipeline import compiled, submit

    params = {}
    if args.params_file:
        with open(args.params_file) as f:
            params.update(yaml.safe_load(f) or {})
    params.update(_parse_params(args.param))
    if args.platform == "vertex":
        params.update(_vertex_parameters(args, params))
    submit.check_cloud_parameters(params, args.platform)  # before the registry is asked
    pipeline_file = args.pipeline_file
    if not pipeline_file:
        pipeline_file = os.path.join(scratch, f"pipeline-{args.platform}.yaml")
        print(compile_pipeline(pipeline_file, _pinned_image(args), args.platform, args.gpu_type,
                               args.gpu_count, kfp_version, args.store_secret,
                               args.store_endpoint))
    elif not os.path.isfile(pipeline_file):
        raise AdmodError(f"Pipeline file '{pipeline_file}' does not exist: pass a file written "
                         "by 'admod compile', or drop --pipeline-file to compile on the fly.")
    elif (args.gpu_type or args.store_secret is not None or args.store_endpoint
          or (args.image and {args.image} != compiled.pipeline_images(pipeline_file))):
        raise AdmodError(f"'{pipeline_file}' is already compiled, for its own image, GPUs and "
                         "store: drop --image, --gpu-type and --store-*, or drop --pipeline-file "
                         "to compile with them.")
    params = parameters.check(params, compiled.declared_parameters(pipeline_file))
    submit.check_compiled_for(pipeline_file, args.platform)
    if kfp_version:
        submit.check_backend(pipeline_file, kfp_version)
    submit.check_image(pipeline_file, components.DEFAULT_IMAGE, args.image)
    if not args.image_by_tag:
        submit.check_pinned(pipeline_file)
    return submit.RunSettings(pipeline_file, params, args.pipeline_root, args.display_name,
                              args.cache, args.service_account, scratch)


def _vertex_parameters(args, params: dict) -> dict:
    """On Vertex: the Model Registry and Experiments live in the run's project and region,
    unless the parameters name others; --experiment and --tensorboard set their parameters."""
    given = {"vertex_project": args.project, "vertex_location": args.region,
             "experiment": args.experiment, "vertex_tensorboard": args.tensorboard}
    return {name: value for name, value in given.items() if value and name not in params}


def _labels(pairs: list[str]) -> dict:
    return key_values(pairs, "Label", "KEY=VALUE", "--label team=moderation")


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


def cmd_submit(args) -> int:
    # Whatever is compiled or rewritten to send lives in a temporary folder for the command only.
    with tempfile.TemporaryDirectory(prefix="admod-") as scratch:
        return _submit(args, scratch)


def _cloud_errors(args):
    """The platform client's errors as one sentence each, for a cloud command."""
    from admod.pipeline import submit

    if args.platform == "vertex":
        return submit.vertex_errors(args.project, args.region)
    return submit.kubeflow_errors(args.host)


def _submit(args, scratch: str) -> int:
    _require_target(args)
    with _cloud_errors(args):
        return _submit_to_platform(args, scratch)


def _submit_to_platform(args, scratch: str) -> int:
    from admod.pipeline import submit

    if args.platform == "vertex":
        labels = _labels(args.label)
        submit.check_vertex_access(args.project, args.region)
        settings = _settings(args, scratch)
        job = submit.vertex_job(settings, args.project, args.region, labels)
        name = submit.submit_vertex(job, settings, args.network)
        print(f"{name}\n{submit.vertex_run_url(name)}")
        if args.wait:
            submit.follow_vertex(job)
    else:
        client = _kubeflow_client(args)
        settings = _settings(args, scratch, _kfp_version(args, client))
        run_id = submit.submit_kubeflow(client, settings, args.experiment or KFP_EXPERIMENT,
                                        args.namespace)
        print(f"{run_id}\n{submit.kubeflow_run_url(args.host, run_id)}")
        if args.wait:
            submit.follow_kubeflow(client, run_id, args.host)
    if args.wait:
        print("the run succeeded")
    return 0


def cmd_schedule(args) -> None:
    with tempfile.TemporaryDirectory(prefix="admod-") as scratch:
        _schedule(args, scratch)


def _schedule(args, scratch: str) -> None:
    _require_target(args)
    with _cloud_errors(args):
        _schedule_on_platform(args, scratch)


def _schedule_on_platform(args, scratch: str) -> None:
    from admod.pipeline import submit

    labels = _labels(args.label) if args.action == "create" else {}
    if args.platform == "vertex":
        submit.check_vertex_access(args.project, args.region)
    if args.action == "create":
        if args.platform == "vertex":
            settings = _settings(args, scratch)
            job = submit.vertex_job(settings, args.project, args.region, labels)
            print(submit.schedule_vertex(job, settings, args.cron, args.network))
        else:
            client = _kubeflow_client(args)
            settings = _settings(args, scratch, _kfp_version(args, client))
            print(submit.schedule_kubeflow(client, settings, args.experiment or KFP_EXPERIMENT,
                                           args.cron, args.namespace))
    elif args.action == "list":
        rows = (submit.list_vertex_schedules(args.project, args.region) if args.platform == "vertex"
                else submit.list_kubeflow_schedules(_kubeflow_client(args), args.namespace))
        for row in rows:
            print("\t".join(row))
    else:
        if args.platform == "vertex":
            submit.change_vertex_schedule(args.action, args.schedule, args.project, args.region)
        else:
            submit.change_kubeflow_schedule(_kubeflow_client(args), args.action, args.schedule)
        done = {"pause": "paused", "resume": "resumed", "delete": "deleted"}[args.action]
        print(f"{done} {args.schedule}")


def _platform_arguments(p, runs: bool) -> None:
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
    _image_by_tag_flag(p)
    p.add_argument("--gpu-type", help="GKE accelerator label or Vertex accelerator type")
    p.add_argument("--gpu-count", type=int, default=1)
    _store_flags(p)


def _image_by_tag_flag(p) -> None:
    p.add_argument("--image-by-tag", action="store_true",
                   help="send --image's tag as it is, unresolved: each pod pulls what the tag "
                        "names when it starts, and the cache may reuse results of older code "
                        "under it")


def _store_flags(p) -> None:
    p.add_argument("--store-secret", help="Kubeflow: the secret (keys accesskey, secretkey) "
                   "every step reads for s3:// and minio:// (default: mlpipeline-minio-artifact, "
                   "the stock install's, if present; before backend 2.15 none unless named; '' "
                   "for none)")
    p.add_argument("--store-endpoint", default="", help="Kubeflow: the S3 endpoint for s3:// "
                   "(AWS_ENDPOINT_URL; minio:// uses the install's MinIO)")


def build_parser() -> argparse.ArgumentParser:
    from importlib import metadata

    parser = argparse.ArgumentParser(prog="admod", description=__doc__)
    parser.add_argument("--version", action="version",
                        version=f"admod {metadata.version('admod')}")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("demo-data", help="write a synthetic ad data set")
    p.add_argument("folder")
    p.add_argument("--count", type=int, default=600, help="ads to write, 2 or more")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true",
                   help="write into a folder that holds files (files of the same name are "
                        "overwritten)")
    p.set_defaults(func=cmd_demo_data)

    p = commands.add_parser("compile", help="compile the pipeline to YAML")
    p.add_argument("-o", "--output", default=DEFAULT_PIPELINE_FILE)
    p.add_argument("--image", help="container image for every step (default: the placeholder "
                   "admod.components.DEFAULT_IMAGE); a tag is resolved to its digest")
    _image_by_tag_flag(p)
    p.add_argument("--platform", choices=["kubeflow", "vertex"], default="kubeflow")
    p.add_argument("--gpu-type", help="GKE accelerator label (nvidia-tesla-t4, nvidia-l4, ...) or "
                   "Vertex accelerator type (NVIDIA_TESLA_T4, NVIDIA_L4, ...)")
    p.add_argument("--gpu-count", type=int, default=1)
    p.add_argument("--kfp-version", default="", help="the Kubeflow Pipelines backend to compile "
                   "for, e.g. 2.5.0 (default: the newest); before 2.14 the split is one task")
    _store_flags(p)
    p.set_defaults(func=cmd_compile)

    p = commands.add_parser("split", help="run the split step alone: check a data set")
    p.add_argument("--data", required=True,
                   help="folder, gs:// or s3:// prefix with the class folders")
    p.add_argument("--out", required=True, help="folder for shards, manifest and report")
    _option_flags(p, SPLIT_OPTIONS)  # the pipeline's split parameters; split_workers: processes
    p.set_defaults(func=cmd_split)

    p = commands.add_parser("run", help="run the whole pipeline locally with kfp.local")
    p.add_argument("--data", help=f"data root (default: demo data in {defaults.LOCAL_DEMO_DATA})")
    p.add_argument("--pipeline-file", help="a compiled pipeline to run (default: compiled on "
                   "the fly, for --image with --runner docker)")
    p.add_argument("--pipeline-root", default=defaults.LOCAL_PIPELINE_ROOT)
    p.add_argument("--registry", default=defaults.LOCAL_REGISTRY_ROOT)
    p.add_argument("--full", action="store_true",
                   help="the method's values throughout, not the small local profile")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="set a pipeline parameter (repeatable)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="stream every step's full output (always kept in <run>/<step>/log)")
    p.add_argument("--runner", choices=["subprocess", "docker"], default="subprocess",
                   help="subprocess: each step a process here; docker: each step in a container "
                   "of --image, network off, as on a cluster")
    p.add_argument("--image", default=LOCAL_IMAGE,
                   help=f"with --runner docker: the image every step runs in (default {LOCAL_IMAGE}"
                   ", built by 'make image-local')")
    p.add_argument("--container-user", default=f"{os.getuid()}:{os.getgid()}", metavar="UID:GID",
                   help="with --runner docker: the user id steps run as (default: yours, so that "
                   "you own what they write)")
    p.set_defaults(func=cmd_run)

    registry_parser = commands.add_parser("registry", help="a registry's versions and champion")
    actions = registry_parser.add_subparsers(dest="action", required=True)
    p = actions.add_parser("list", help="the complete versions, the champion marked")
    p.add_argument("registry", help="a registry_root (folder or gs:// prefix)")
    p.set_defaults(func=cmd_registry)
    p = actions.add_parser("clean", help="delete what dead pushes left (version folders "
                           "without _COMPLETE, .tmp- files), once older than a grace period")
    p.add_argument("registry", help="a registry_root (folder or gs:// prefix)")
    p.add_argument("--dry-run", action="store_true", help="say what would be removed, remove "
                   "nothing")
    p.add_argument("--older-than-hours", type=float, default=24.0,
                   help="the grace period: a younger incomplete version may still be written")
    p.set_defaults(func=cmd_registry)
    p = actions.add_parser("set-champion", help="point champion.json at a complete version "
                           "(repairs an empty or corrupt pointer)")
    p.add_argument("registry", help="a registry_root (folder or gs:// prefix)")
    p.add_argument("version")
    p.set_defaults(func=cmd_registry)

    p = actions.add_parser("sync", help="add every complete version to a Vertex AI Model "
                           "Registry model, evaluation and champion alias included; finishes "
                           "an upload that failed, never duplicates a version")
    p.add_argument("registry", help="a gs:// registry_root")
    p.add_argument("--vertex-model", required=True,
                   help="the Vertex model: a display name or projects/P/locations/L/models/ID")
    p.add_argument("--project", help="its Google Cloud project (or in --vertex-model)")
    p.add_argument("--region", help="its region (or in --vertex-model)")
    p.add_argument("--serving-image", default=DEFAULTS.vertex_serving_image)
    p.add_argument("--default-alias", action="store_true",
                   help="the champion's version also becomes the default version")
    p.set_defaults(func=cmd_registry)

    p = commands.add_parser("predict", help="score images with the champion or a version (CSV)")
    p.add_argument("--model", help="a registry_root (its champion) or one of its version folders")
    p.add_argument("--request-body", action="store_true",
                   help="print, instead of scores, the JSON body to POST to a TF Serving, KServe "
                        "or Vertex AI endpoint for these images (no --model needed)")
    p.add_argument("inputs", nargs="+", help="image files, folders or gs:// prefixes")
    p.add_argument("--batch-size", type=int, default=32)
    p.set_defaults(func=cmd_predict)

    p = commands.add_parser("serve-manifest", help="a KServe InferenceService (YAML) serving "
                            "the champion or a version: pipe it to 'kubectl apply -f -'")
    p.add_argument("--model", required=True,
                   help="a gs:// registry_root (its champion) or one of its version folders")
    p.add_argument("--name", default="admod-ad-classifier")
    p.add_argument("--namespace", default="", help="default: kubectl's current namespace")
    p.add_argument("--runtime-version", default=defaults.TF_SERVING_VERSION,
                   help="the tensorflow/serving image tag KServe runs (default %(default)s; "
                        "KServe's own default, 2.6.2, cannot load the model)")
    p.set_defaults(func=cmd_serve_manifest)

    p = commands.add_parser("submit", help="run the pipeline on Vertex AI or Kubeflow")
    _platform_arguments(p, runs=True)
    p.add_argument("--wait", action="store_true",
                   help="follow the run to its end and exit with its status")
    p.set_defaults(func=cmd_submit)

    schedule = commands.add_parser("schedule", help="scheduled retraining").add_subparsers(
        dest="action", required=True)
    p = schedule.add_parser("create", help="a cron schedule (standard 5 fields)")
    p.add_argument("--cron", required=True, help="e.g. '0 3 * * 1': Mondays at 03:00")
    _platform_arguments(p, runs=True)
    p.set_defaults(func=cmd_schedule)
    p = schedule.add_parser("list")
    _platform_arguments(p, runs=False)
    p.set_defaults(func=cmd_schedule)
    for action in ("pause", "resume", "delete"):
        p = schedule.add_parser(action)
        p.add_argument("schedule", help="schedule resource name (Vertex) or recurring run id "
                       "(Kubeflow)")
        _platform_arguments(p, runs=False)
        p.set_defaults(func=cmd_schedule)
    return parser


def _interrupted(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    from admod import logs
    from admod.pipeline.local_run import RunStopped

    logs.setup()
    args = build_parser().parse_args(argv)
    # SIGTERM (a pod's end, a service manager) unwinds like Ctrl-C: temporary folders go.
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        return args.func(args) or 0
    except RunStopped as stopped:
        say(str(stopped))
        return 130
    except KeyboardInterrupt:
        say(f"'{args.command}' stopped (interrupted); what it was writing in temporary folders "
            "is removed, nothing half-written is left in place.")
        return 130
    except RunFailed as failed:
        say(str(failed))
        return 1
    except (AdmodError, OSError) as error:
        message = user_error(error)
        if message is None:
            raise
        say(message)
        return USER_ERROR_STATUS


if __name__ == "__main__":
    sys.exit(main())
