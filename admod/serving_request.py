"""What `admod predict` sends: the image files of its inputs, checked by the split's rules, and
the JSON body that TF Serving's REST API (KServe v1, Vertex AI endpoints) takes for them. No
TensorFlow here: `admod predict --request-body` starts in a fraction of a second."""

import base64
import os
from typing import Iterator

from admod import split, storage
from admod.errors import AdmodError
from admod.options import DEFAULTS, ImageRules

INPUT = "image_bytes"  # the name ends in _bytes: TF Serving's JSON API base64-decodes {"b64": ...}


def body(images: list[bytes]) -> dict:
    """The JSON body a client POSTs: one instance per image, its bytes base64-encoded as
    {"b64": ...}."""
    return {"instances": [{INPUT: {"b64": base64.b64encode(data).decode("ascii")}}
                          for data in images]}


def input_uris(inputs: list[str]) -> Iterator[str]:
    """Files as given; folders and gs:// prefixes expanded to every file under them (those
    that are no usable image are then named, with the split's reason)."""
    for item in inputs:
        if storage.is_remote(item):
            if storage.exists(item):
                yield item
            elif storage.is_dir(item):
                yield from (u for u, _ in storage.list_files(item))
            else:
                raise AdmodError(f"'{item}' is neither an object nor a prefix with objects: "
                                 "check the URI.")
        elif os.path.isdir(item):
            files = [u for u, _ in storage.list_files(item)]
            if not files:
                raise AdmodError(f"Folder '{item}' holds no files to score: pass a folder with "
                                 "images, or image files.")
            yield from files
        elif os.path.lexists(item):  # a file, or a pipe or link that the checks will name
            yield item
        else:
            raise AdmodError(f"Input '{item}' does not exist: pass image files, folders or gs:// "
                             "prefixes.")


def scorable(inputs: list[str], max_pixels: int = DEFAULTS.max_image_pixels
             ) -> Iterator[tuple[str, bytes, str]]:
    """(uri, bytes the serving signature decodes, '') per input, or (uri, b'', reason) for a
    file that cannot be scored: the split's rules and conversions (split.check_file: extension,
    regular file, kind, too small, too many pixels; WebP as PNG...)."""
    rules = ImageRules(max_image_pixels=max_pixels)
    for uri in input_uris(inputs):
        try:
            checked = split.check_file(uri, rules)
        except AdmodError as error:  # object storage, after the client's retries
            yield uri, b"", f"unreadable: {error}"
            continue
        yield uri, checked.data, checked.reason


def request_body(inputs: list[str]) -> tuple[dict, list[tuple[str, str]]]:
    """The TF Serving / KServe v1 / Vertex AI REST request body for the inputs, and the
    (uri, reason) of those left out."""
    usable, refused = [], []
    for uri, data, reason in scorable(inputs):
        (refused.append((uri, reason)) if reason else usable.append(data))
    return body(usable), refused
