#!/usr/bin/env bash
# Build the trial image kubetune/trainer:dev and print its size.
#
#   trainer-image/build.sh                                   # here: offline base local/python-base:dev
#   BASE_IMAGE=python:3.11-slim trainer-image/build.sh       # anywhere images can be pulled
#   TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu trainer-image/build.sh   # CPU-only torch
#
# Env: IMAGE (default kubetune/trainer), TAG (default dev), BASE_IMAGE (default: local/python-base:dev
# when docker has it or hack/cluster/images.sh can make it, else python:3.11-slim), TORCH_INDEX_URL
# (default empty: torch from PyPI, the CUDA build), PIP_CA_BUNDLE (default
# /etc/ssl/certs/ca-certificates.crt, passed as the BuildKit secret `pipcert` when it exists), DOCKER.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "trainer-image/build.sh: ERROR: $*" >&2; exit 1; }
log() { echo "trainer-image/build.sh: $*" >&2; }

IMAGE=${IMAGE:-kubetune/trainer}
TAG=${TAG:-dev}
TORCH_INDEX_URL=${TORCH_INDEX_URL:-}
PIP_CA_BUNDLE=${PIP_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
LOCAL_BASE=local/python-base:dev
# The docker.io 20.10 client drives the engine's own BuildKit (no buildx plugin needed).
DOCKER=${DOCKER:-$(command -v /usr/bin/docker || command -v docker || true)}

if ! "${DOCKER:-docker}" info >/dev/null 2>&1; then
  [[ -x hack/docker-up.sh ]] || die "no docker engine answering and no hack/docker-up.sh"
  hack/docker-up.sh
  DOCKER=${DOCKER:-$(command -v /usr/bin/docker || command -v docker)}
fi

if [[ -z ${BASE_IMAGE:-} ]]; then
  if "$DOCKER" image inspect "$LOCAL_BASE" >/dev/null 2>&1; then
    BASE_IMAGE=$LOCAL_BASE
  elif [[ -x hack/cluster/images.sh ]]; then
    log "making $LOCAL_BASE with hack/cluster/images.sh"
    hack/cluster/images.sh
    BASE_IMAGE=$LOCAL_BASE
  else
    BASE_IMAGE=python:3.11-slim
  fi
fi

secret=()
[[ -s $PIP_CA_BUNDLE ]] && secret=(--secret "id=pipcert,src=$PIP_CA_BUNDLE")

log "building $IMAGE:$TAG from $BASE_IMAGE${TORCH_INDEX_URL:+ (torch from $TORCH_INDEX_URL)}"
started=$(date +%s)
DOCKER_BUILDKIT=1 "$DOCKER" build -f trainer-image/Dockerfile \
  --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "TORCH_INDEX_URL=$TORCH_INDEX_URL" "${secret[@]}" \
  -t "$IMAGE:$TAG" .
size=$("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE:$TAG")
log "built $IMAGE:$TAG in $(( $(date +%s) - started )) s: $(( size / 1000000 )) MB"
