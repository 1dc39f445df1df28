"""The commands that work on this machine: demo-data, split, run."""

import os
import tempfile
import time

from admod import defaults, options
from admod.pipeline.commands import arguments


def add(commands) -> None:
    add_demo_data(commands)
    add_split(commands)
    add_run(commands)


def add_demo_data(commands) -> None:
    p = commands.add_parser("demo-data", help="write a synthetic ad data set")
    p.add_argument("folder")
    p.add_argument("--count", type=int, default=600, help="ads to write, 2 or more")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true",
                   help="write into a folder that holds files (files of the same name are "
                        "overwritten)")
    p.set_defaults(func=demo_data_command)


def demo_data_command(args) -> None:
    from admod import demo_data

    demo_data.check_target(args.folder, args.count, args.force)
    counts = demo_data.write_demo_data(args.folder, count=args.count, seed=args.seed)
    print(f"wrote {sum(counts.values())} ads to {args.folder}: {counts}")


# The pipeline's split parameters, as admod split's flags; split_workers: processes
SPLIT_OPTIONS = (options.SplitOptions, options.ImageRules, options.ListingOptions)


def add_split(commands) -> None:
    p = commands.add_parser("split", help="run the split step alone: check a data set")
    p.add_argument("--data", required=True,
                   help="folder, gs:// or s3:// prefix with the class folders")
    p.add_argument("--out", required=True, help="folder for shards, manifest and report")
    arguments.option_flags(p, SPLIT_OPTIONS)
    p.set_defaults(func=split_command)


def split_command(args) -> None:
    from admod import split_steps

    split_options, rules, listing = options.from_parameters(
        vars(args), *SPLIT_OPTIONS, inputs=("data", "out", "command"))
    split_steps.split_into_folder(data_root=args.data, out=args.out, options=split_options,
                                  rules=rules, partitions=listing.split_workers)
    print(f"wrote shards, manifest.csv and report.md under {args.out}")


def add_run(commands) -> None:
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
    p.add_argument("--image", default=defaults.LOCAL_IMAGE,
                   help="with --runner docker: the image every step runs in (default "
                   f"{defaults.LOCAL_IMAGE}, built by 'make image-local')")
    p.add_argument("--container-user", default=f"{os.getuid()}:{os.getgid()}", metavar="UID:GID",
                   help="with --runner docker: the user id steps run as (default: yours, so that "
                   "you own what they write)")
    p.set_defaults(func=run_command)


def run_command(args) -> None:
    from admod.pipeline import local_run, run_index, run_summary

    docker = args.runner == "docker"
    # A pipeline compiled on the fly lives in a temporary folder for the run only.
    with tempfile.TemporaryDirectory(prefix="admod-") as scratch:
        pipeline_file, values, data = local_run.prepare(
            args.data, args.registry, arguments.parse_params(args.param), args.full,
            args.pipeline_file, args.pipeline_root, args.image if docker else None, scratch)
        runner = None
        if docker:
            runner = local_run.docker_runner(data, values["registry_root"], args.container_user)
            print(f"Every step runs in {args.image} as user {args.container_user}, network off.")
        started = time.monotonic()
        run_dir = local_run.run_local(pipeline_file, values, args.pipeline_root, runner,
                                      verbose=args.verbose)
    index = run_index.write(run_dir)
    print(run_summary.summary(run_dir))
    print(f"Finished in {time.monotonic() - started:.0f} s. Every report, linked from one page:")
    print(os.path.relpath(index) if not os.path.relpath(index).startswith("..") else index)
