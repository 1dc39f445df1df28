"""Scoring image files with a registry model's exported SavedModel (`admod predict`)."""

import json
import logging
import os
import tempfile
from typing import Iterator

import tensorflow as tf

from admod import registry, serving, split, storage
from admod.errors import AdmodError
from admod.options import DEFAULTS, ImageRules

log = logging.getLogger(__name__)


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
    return serving.request_body(usable), refused


def predict(model: str, inputs: list[str],
            batch_size: int = 32) -> Iterator[tuple[str, float | None, str]]:
    """(uri, probability, label) per input; (uri, None, reason) for a file that cannot be scored."""
    version = registry.resolve_version(model)
    info = json.loads(storage.read_bytes(storage.join(version, registry.MODEL_INFO_FILE)))
    with tempfile.TemporaryDirectory() as tmp:
        saved_model = registry.serving_model_dir(version)
        serve = serving.load(storage.download_dir(saved_model, os.path.join(tmp, "saved_model")),
                             named=saved_model)
        batch: list[tuple[str, bytes]] = []
        max_pixels = info.get("max_image_pixels", DEFAULTS.max_image_pixels)
        for uri, data, reason in scorable(inputs, max_pixels):
            if reason:
                yield uri, None, reason
                continue
            batch.append((uri, data))
            if len(batch) == batch_size:
                yield from _score(serve, batch)
                batch = []
        if batch:
            yield from _score(serve, batch)


def _score(serve, batch):
    result = serve(image_bytes=tf.constant([data for _, data in batch]))
    scored = zip(batch, result["probability"].numpy(), result["label"].numpy(), strict=True)
    for (uri, _), p, label in scored:
        yield uri, float(p), label.decode()
