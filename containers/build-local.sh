#!/usr/bin/env bash
# Builds the trainer image on this machine (`make image-local`): the CPU variant of
# containers/trainer.Dockerfile, tagged $IMAGE (default admod/trainer:local-cpu).
#
#   IMAGE         the tag to build                         (admod/trainer:local-cpu)
#   VARIANT       cpu or gpu                               (cpu)
#   WEIGHTS       stand-in or download                     (stand-in: no access to the weights' host)
#   CA_BUNDLE     a CA bundle for a TLS-intercepting proxy, passed as a build secret, never
#                 stored in the image                      ($PIP_CERT when set)
#   PIP_CONF      a pip.conf (index, proxy), passed as a build secret
#
# Idempotent and fast when nothing changed (Docker's layer cache). If the Dockerfile's base
# image (ARG BASE_IMAGE, by digest) is missing and cannot be pulled (no registry here), a
# stand-in with the same Debian release and Python is built from Debian packages (debootstrap,
# as root), tagged $STANDIN, and passed as BASE_IMAGE; the build says so.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-admod/trainer:local-cpu}
VARIANT=${VARIANT:-cpu}
WEIGHTS=${WEIGHTS:-stand-in}
CA_BUNDLE=${CA_BUNDLE:-${PIP_CERT:-}}
PIP_CONF=${PIP_CONF:-}
DOCKERFILE=containers/trainer.Dockerfile
BASE=$(sed -n 's/^ARG BASE_IMAGE=//p' "$DOCKERFILE")
STANDIN=admod/base-standin:python3.11-bookworm
DEBIAN_SUITE=bookworm  # the base's Debian release: python:3.11-slim-bookworm

say() { echo "image-local: $*" >&2; }

# A docker CLI that builds with BuildKit (needed for build secrets): buildx, or the Debian
# docker.io client, which has BuildKit built in.
docker_cli() {
  if docker buildx version >/dev/null 2>&1; then echo docker
  elif [ -x /usr/bin/docker ]; then echo /usr/bin/docker
  else say "no docker CLI with BuildKit: install docker-buildx or Debian's docker.io."; exit 1
  fi
}

standin_base() {
  command -v debootstrap >/dev/null || { say "$BASE is missing and cannot be pulled; install debootstrap (apt-get install debootstrap) to build a stand-in."; exit 1; }
  local root
  root=$(mktemp -d)
  say "building a stand-in for $BASE from Debian $DEBIAN_SUITE packages (about a minute)"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$DEBIAN_SUITE" "$root" http://deb.debian.org/debian >/dev/null
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*
  # The environment the real base sets, so the Dockerfile behaves the same on both.
  tar -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$STANDIN" >/dev/null
  rm -rf "$root"
}

docker info >/dev/null 2>&1 || { say "no Docker daemon answers: start it (e.g. dockerd &) and try again."; exit 1; }
base_args=()
if ! docker image inspect "$BASE" >/dev/null 2>&1 && ! docker pull "$BASE" >/dev/null 2>&1; then
  docker image inspect "$STANDIN" >/dev/null 2>&1 || standin_base
  say "the pinned base $BASE cannot be pulled here: building on the stand-in $STANDIN instead"
  base_args=(--build-arg "BASE_IMAGE=$STANDIN")
fi

secrets=()
[ -n "$CA_BUNDLE" ] && secrets+=(--secret "id=pip_cert,src=$CA_BUNDLE")
[ -n "$PIP_CONF" ] && secrets+=(--secret "id=pip_conf,src=$PIP_CONF")
started=$(date +%s)
DOCKER_BUILDKIT=1 "$(docker_cli)" build --network host --progress plain \
  --build-arg "VARIANT=$VARIANT" --build-arg "IMAGENET_WEIGHTS=$WEIGHTS" "${base_args[@]}" \
  "${secrets[@]}" \
  --file "$DOCKERFILE" --tag "$IMAGE" .
say "built $IMAGE ($VARIANT, weights: $WEIGHTS) in $(( $(date +%s) - started )) s"
# A registry digest exists once the image is pushed: then pass --image REF@sha256:...
say "image id $(docker image inspect --format '{{.Id}}' "$IMAGE"); after docker push, pass --image $(docker image inspect --format '{{range .RepoDigests}}{{.}} {{end}}' "$IMAGE" | awk '{print $1}' | grep . || echo "REPOSITORY@sha256:... (docker push prints the digest)")"
