# The two commands a fresh machine needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-container image-local compile demo-data images lock clean

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
# so a module's fixtures are built once.
PYTEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile

# The trainer image's CPU variant, built here (containers/build-local.sh; needs a Docker daemon).
image-local:
	containers/build-local.sh

# The container tests: the image under any user id, a failing step failing the run, and the whole
# pipeline in containers with the network off. They fail, never skip, without Docker.
test-container: $(STAMP) image-local
	$(BIN)/python -m pytest tests/container

compile: $(STAMP)
	$(BIN)/admod compile -o pipeline.yaml

demo-data: $(STAMP)
	$(BIN)/admod demo-data data/demo

images:
	gcloud builds submit --config containers/cloudbuild.yaml \
	  --substitutions=_IMAGE=$(IMAGE),_TAG=$(TAG) .

lock: $(STAMP)
	$(BIN)/python containers/lock.py

clean:
	rm -rf runs models data .pytest_cache
