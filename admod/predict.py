"""Scoring image files with a registry model's exported SavedModel (`admod predict`); the files
and the request body: admod.serving_request."""

import io
import logging
import os
import tempfile
from typing import Iterator

import tensorflow as tf

from admod import logs, registry, results, serving, storage
from admod.serving_request import scorable
from admod.results import ModelInfo

log = logging.getLogger(__name__)


def predict(model: str, inputs: list[str],
            batch_size: int = 32) -> Iterator[tuple[str, float | None, str]]:
    """(uri, probability, label) per input; (uri, None, reason) for a file that cannot be scored."""
    version = registry.resolve_version(model)
    info = results.read(ModelInfo, storage.join(version, registry.MODEL_INFO_FILE))
    with tempfile.TemporaryDirectory() as tmp:
        saved_model = registry.serving_model_dir(version)
        local = storage.download_dir(saved_model, os.path.join(tmp, "saved_model"))
        with logs.native_stderr_silenced():  # TensorFlow's start-up chatter, no problem of yours
            serve = serving.load(local, named=saved_model)
            serve(image_bytes=tf.constant([_blank_png()]))  # the first call's notes too
        batch: list[tuple[str, bytes]] = []
        for uri, data, reason in scorable(inputs, info.max_image_pixels):
            if reason:
                yield uri, None, reason
                continue
            batch.append((uri, data))
            if len(batch) == batch_size:
                yield from _score(serve, batch)
                batch = []
        if batch:
            yield from _score(serve, batch)


def _blank_png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (32, 32)).save(out, "PNG")
    return out.getvalue()


def _score(serve, batch):
    result = serve(image_bytes=tf.constant([data for _, data in batch]))
    scored = zip(batch, result["probability"].numpy(), result["label"].numpy(), strict=True)
    for (uri, _), p, label in scored:
        yield uri, float(p), label.decode()
