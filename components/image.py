"""The one setting every component's image comes from (`admod compile --image` overrides it)."""

import os

DEFAULT_IMAGE = "us-docker.pkg.dev/admod-project/admod/trainer:0.1.0"
IMAGE = os.environ.get("ADMOD_IMAGE", DEFAULT_IMAGE)
