"""admod registry: a registry's versions and champion, its leftovers, and its copy in the Vertex
AI Model Registry."""

import sys

from admod import registry, vertex_registry, vertex_targets
from admod.errors import AdmodError
from admod.options import DEFAULTS

ROOT_HELP = "a registry_root (folder or gs:// prefix)"


def add(commands) -> None:
    registry_parser = commands.add_parser("registry", help="a registry's versions and champion")
    actions = registry_parser.add_subparsers(dest="action", required=True)

    p = actions.add_parser("list", help="the complete versions, the champion marked")
    p.add_argument("registry", help=ROOT_HELP)
    p.set_defaults(func=list_command)

    p = actions.add_parser("clean", help="delete what dead pushes left (version folders "
                           "without _COMPLETE, .tmp- files), once older than a grace period")
    p.add_argument("registry", help=ROOT_HELP)
    p.add_argument("--dry-run", action="store_true", help="say what would be removed, remove "
                   "nothing")
    p.add_argument("--older-than-hours", type=float, default=24.0,
                   help="the grace period: a younger incomplete version may still be written")
    p.set_defaults(func=clean_command)

    p = actions.add_parser("set-champion", help="point champion.json at a complete version "
                           "(repairs an empty or corrupt pointer)")
    p.add_argument("registry", help=ROOT_HELP)
    p.add_argument("version")
    p.set_defaults(func=set_champion_command)

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
    p.set_defaults(func=sync_command)


def list_command(args) -> None:
    registry.check_registry(args.registry)
    try:
        champion = registry.champion(args.registry)
    except AdmodError as broken:  # list is the repair tool: it lists all the same
        champion = None
        print(f"admod: {broken}", file=sys.stderr)
    for version in registry.complete_versions(args.registry):
        print(f"{version}\t{'champion' if version == champion else ''}".rstrip())


def clean_command(args) -> None:
    removed = registry.remove_leftovers(args.registry, args.older_than_hours * 3600,
                                        args.dry_run)
    print(f"{'would remove' if args.dry_run else 'removed'} {len(removed)} leftover(s) of "
          f"unfinished pushes: {' '.join(removed) or 'none'}")


def set_champion_command(args) -> None:
    registry.repair_champion(args.registry, args.version)
    print(f"champion is now {args.version}")


def sync_command(args) -> None:
    from admod.pipeline import submit

    target = vertex_targets.ModelTarget(args.vertex_model, args.project or "", args.region or "",
                                        args.serving_image, args.default_alias)
    with submit.vertex_errors(args.project, args.region or ""):  # credentials: its client's
        for name in vertex_registry.sync(args.registry, target):
            print(name)
