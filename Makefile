# The two commands a fresh machine needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-tf-serving test-container image-local compile docs demo-data images lock \
	lock-check bench-smoke clean

# Container image: override IMAGE and TAG; remember `admod compile --image $(IMAGE):$(TAG)`.
IMAGE ?= us-docker.pkg.dev/admod-project/admod/trainer
TAG ?= 0.1.0

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/admod run

# The unit suite in PYTEST_WORKERS processes (pytest-xdist), one test file per worker at a time,
# so a module's fixtures are built once, the longest first (tests/conftest.py).
PYTEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

# The export served the way TF Serving serves it (its SavedModel loader, its JSON request rules)
# under TensorFlow 2.15.1, the version of Vertex AI's prebuilt tf2-*.2-15 images and of KServe's
# runtimeVersion in `admod serve-manifest`, in a virtual environment of its own. `make test` runs
# the same check under the training TensorFlow. MODEL=<registry or version folder> checks that
# model instead of a small one made here (after `make run`: MODEL=models).
TF_SERVING_VENV := .venv-tf-serving
TF_SERVING_CASES := build/tf-serving
test-tf-serving: $(STAMP) $(TF_SERVING_VENV)/.installed
	rm -rf $(TF_SERVING_CASES)
	$(BIN)/python -m tests.support.serving_cases $(TF_SERVING_CASES) $(if $(MODEL),--model $(MODEL))
	$(TF_SERVING_VENV)/bin/python tests/support/tf_serving.py $(TF_SERVING_CASES)

$(TF_SERVING_VENV)/.installed: tests/support/tf_serving_requirements.txt
	$(PYTHON) -m venv $(TF_SERVING_VENV)
	$(TF_SERVING_VENV)/bin/python -m pip install --quiet -r tests/support/tf_serving_requirements.txt
	touch $@

# Every benchmark at a tiny size, as docs/benchmarks.md runs it (the bench extra: tf-keras).
bench-smoke: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[bench]"
	$(BIN)/python bench/smoke.py

# The trainer image's CPU variant, built here (containers/build-local.sh; needs a Docker daemon).
image-local:
	containers/build-local.sh

# The container tests: the image under any user id, a failing step failing the run, and the whole
# pipeline in containers with the network off. They fail, never skip, without Docker.
test-container: $(STAMP) image-local
	$(BIN)/python -m pytest tests/container

compile: $(STAMP)
	$(BIN)/admod compile -o pipeline.yaml

# docs/parameters.md from the options (a test keeps it equal to what this writes)
docs: $(STAMP)
	$(BIN)/python -m admod.parameter_docs > docs/parameters.md

demo-data: $(STAMP)
	$(BIN)/admod demo-data data/demo

images:
	gcloud builds submit --config containers/cloudbuild.yaml \
	  --substitutions=_IMAGE=$(IMAGE),_TAG=$(TAG) .

# The locks: constraints.txt (pins), containers/requirements-{cpu,gpu}.lock (the image's files by
# hash) and the base image's digest. lock-check fails when they drift from pyproject.toml.
lock: $(STAMP)
	$(BIN)/python containers/lock.py

lock-check: $(STAMP)
	$(BIN)/python containers/lock.py --check

clean:
	rm -rf runs models data build .pytest_cache
