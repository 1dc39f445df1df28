# The image every admod step runs in. pipeline.yaml names it (admod.components.DEFAULT_IMAGE);
# cloudbuild.yaml builds and pushes it; `make image-local` builds the CPU variant here.
# Why this base and these arguments: containers/README.md. Build context: the repository root.
# The base, python:3.11-slim-bookworm, by digest: a tag can be rebuilt under the same name.
# `make lock` re-reads the digest where Docker Hub answers; build-local.sh passes a Debian
# stand-in here where no registry does.
ARG BASE_IMAGE=python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91
FROM ${BASE_IMAGE}

# gpu: tensorflow[and-cuda], the CUDA and cuDNN wheels TF was built against (the node supplies
# the NVIDIA driver). cpu: the same image without them.
ARG VARIANT=gpu
# download: the ImageNet file through Keras's loader, hash-checked. stand-in: a random-init file
# of the same shape, for builds that cannot reach the weights' host.
ARG IMAGENET_WEIGHTS=download

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HOME=/home/admod \
    TF_CPP_MIN_LOG_LEVEL=2 \
    ADMOD_IMAGENET_WEIGHTS=/opt/admod/weights/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5

WORKDIR /opt/admod

# 1. Dependencies, the hashed lock's files alone: rebuilt only when the lock changes.
COPY containers/install_dependencies.py containers/requirements-cpu.lock \
     containers/requirements-gpu.lock ./containers/
RUN --mount=type=secret,id=pip_cert --mount=type=secret,id=pip_conf \
    python3 -m venv "$VIRTUAL_ENV" \
    && python containers/install_dependencies.py "$VARIANT"

# 2. The weights, at a fixed path any user id can read (not Keras's per-user cache).
COPY containers/bake_weights.py ./
RUN python bake_weights.py "$IMAGENET_WEIGHTS" "$ADMOD_IMAGENET_WEIGHTS"

# 3. The project itself: a code change rebuilds from here, in seconds.
COPY pyproject.toml README.md src/
COPY admod src/admod
COPY components src/components
COPY pipeline src/pipeline
RUN python -m pip install --no-cache-dir --no-deps --no-build-isolation ./src \
    && rm -rf src \
    && python -c "import admod.components, admod.pipeline.cli, kfp, tensorflow"

# Any user id (OpenShift, a pod's runAsUser): HOME and /tmp are writable by all, the rest is
# read-only and world-readable.
RUN mkdir -p "$HOME" && chmod 1777 "$HOME"
USER 1000:1000
WORKDIR $HOME
