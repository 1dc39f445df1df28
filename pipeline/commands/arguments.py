"""Flags and flag values that several commands share."""

import argparse

from admod import options
from admod.errors import AdmodError


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


def parse_params(pairs: list[str]) -> dict:
    """-p NAME=VALUE pairs, the values read as YAML scalars (5 is a number, true a boolean)."""
    import yaml

    given = key_values(pairs, "Parameter", "NAME=VALUE", "-p head_epochs=5")
    return {name: yaml.safe_load(value) for name, value in given.items()}


def option_flags(parser, classes) -> None:
    """One flag per parameter of the options `classes`, with its default and description:
    --val-fraction for val_fraction."""
    for cls in classes:
        for parameter, field in options.parameter_fields(cls).items():
            kind = field.type
            parser.add_argument(f"--{parameter.replace('_', '-')}", dest=parameter,
                                default=field.default,
                                type=None if kind is bool else kind,
                                action=argparse.BooleanOptionalAction if kind is bool else None,
                                help=f"{field.metadata['description']} (default %(default)s)")


def image_by_tag_flag(p) -> None:
    p.add_argument("--image-by-tag", action="store_true",
                   help="send --image's tag as it is, unresolved: each pod pulls what the tag "
                        "names when it starts, and the cache may reuse results of older code "
                        "under it")


def store_flags(p) -> None:
    p.add_argument("--store-secret", help="Kubeflow: the secret (keys accesskey, secretkey) "
                   "every step reads for s3:// and minio:// (default: mlpipeline-minio-artifact, "
                   "the stock install's, if present; before backend 2.15 none unless named; '' "
                   "for none)")
    p.add_argument("--store-endpoint", default="", help="Kubeflow: the S3 endpoint for s3:// "
                   "(AWS_ENDPOINT_URL; minio:// uses the install's MinIO)")
