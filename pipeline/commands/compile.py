"""admod compile: the pipeline as a file to upload or submit."""

import os

from admod.errors import AdmodError, say
from admod.pipeline import image_digest
from admod.pipeline.commands import arguments

DEFAULT_PIPELINE_FILE = "pipeline.yaml"


def add(commands) -> None:
    p = commands.add_parser("compile", help="compile the pipeline to YAML")
    p.add_argument("-o", "--output", default=DEFAULT_PIPELINE_FILE)
    p.add_argument("--image", help="container image for every step (default: the placeholder "
                   "admod.components.DEFAULT_IMAGE); a tag is resolved to its digest")
    arguments.image_by_tag_flag(p)
    p.add_argument("--platform", choices=["kubeflow", "vertex"], default="kubeflow")
    p.add_argument("--gpu-type", help="GKE accelerator label (nvidia-tesla-t4, nvidia-l4, ...) or "
                   "Vertex accelerator type (NVIDIA_TESLA_T4, NVIDIA_L4, ...)")
    p.add_argument("--gpu-count", type=int, default=1)
    p.add_argument("--kfp-version", default="", help="the Kubeflow Pipelines backend to compile "
                   "for, e.g. 2.5.0 (default: the newest); before 2.14 the split is one task")
    arguments.store_flags(p)
    p.set_defaults(func=compile_command)


def compile_command(args) -> None:
    from admod.pipeline import compiled

    check_output_file(args.output)
    try:
        image = image_digest.pinned(args.image, args.image_by_tag)
    except AdmodError as error:  # compiling needs no registry: said, and the tag kept
        say(f"warning: {error}")
        image = args.image
    print(compiled.write_pipeline(args.output, image, args.platform, args.gpu_type,
                                  args.gpu_count, args.kfp_version, args.store_secret,
                                  args.store_endpoint))


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
