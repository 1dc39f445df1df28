# The image every admod step runs in. pipeline.yaml names it (components/image.py); cloudbuild.yaml
# builds and pushes it. Build context: the repository root.
FROM tensorflow/tensorflow:2.21.0-gpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    KERAS_HOME=/opt/keras \
    TF_CPP_MIN_LOG_LEVEL=2

RUN useradd --create-home --uid 1000 --shell /usr/sbin/nologin admod

WORKDIR /opt/admod
# The lock first: the dependency layer is rebuilt only when the pins change.
COPY constraints.txt pyproject.toml README.md ./
COPY admod ./admod
COPY components ./components
COPY pipeline ./pipeline
# kfp and the project installed here, so no step pip-installs at run time.
RUN python -m pip install --no-cache-dir -c constraints.txt .

# ResNet50 ImageNet no-top weights, baked in: Keras's own loader downloads them once, checks them
# against the hash Keras publishes for that file, and caches them in $KERAS_HOME/models, where
# it looks first at run time. The folder stays writable for the user, as Keras requires.
RUN mkdir -p "$KERAS_HOME" \
    && python -c "import keras; keras.applications.ResNet50(include_top=False, weights='imagenet')" \
    && test -s "$KERAS_HOME/models/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5" \
    && chown -R admod:admod "$KERAS_HOME"

USER 1000:1000
WORKDIR /home/admod
