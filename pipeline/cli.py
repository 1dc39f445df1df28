"""The `admod` command line: demo-data, split, compile, run, registry, predict, serve-manifest,
submit, schedule. Each command's parser and handler live in pipeline/commands/; here, the one
entry point: the exit statuses and one sentence per error."""

import argparse
import sys

from admod import interrupts, logs
from admod.errors import USER_ERROR_STATUS, AdmodError, RunFailed, RunStopped, say, user_error
from admod.pipeline.commands import cloud, compile, local, registry, serving

COMMANDS = (local, compile, registry, serving, cloud)


def build_parser() -> argparse.ArgumentParser:
    from importlib import metadata

    parser = argparse.ArgumentParser(
        prog="admod", description="Fine-tunes ResNet50 into an allowed / not-allowed ad "
        "classifier: locally with kfp.local, or on Vertex AI or Kubeflow Pipelines.")
    parser.add_argument("--version", action="version",
                        version=f"admod {metadata.version('admod')}")
    commands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add(commands)
    return parser


def main(argv=None) -> int:
    """0 on success, 3 for a user's mistake (one sentence on stderr), 1 for a failed run, 2 for
    inputs left out (predict), 130 when interrupted (Ctrl-C, SIGTERM)."""
    logs.setup()
    args = build_parser().parse_args(argv)
    try:
        with interrupts.sigterm_as_interrupt():
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
