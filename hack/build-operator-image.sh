#!/usr/bin/env bash
# Build the operator image kubetune/operator:dev (also tagged :<package version>).
#
#   hack/build-operator-image.sh              # here: offline base local/python-base:dev
#   BASE_IMAGE=python:3.11-slim hack/build-operator-image.sh   # anywhere images can be pulled
#
# Env: IMAGE (default kubetune/operator), TAG (default dev), BASE_IMAGE (default: local/python-base:dev
# when docker has it or hack/cluster/images.sh can make it, else python:3.11-slim),
# PIP_CA_BUNDLE (default /etc/ssl/certs/ca-certificates.crt, passed as the BuildKit secret `pipcert`).
# Prints the image size at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "build-operator-image: ERROR: $*" >&2; exit 1; }
log() { echo "build-operator-image: $*" >&2; }

IMAGE=${IMAGE:-kubetune/operator}
TAG=${TAG:-dev}
VERSION=$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
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

log "building $IMAGE:$TAG from $BASE_IMAGE"
started=$(date +%s)
DOCKER_BUILDKIT=1 "$DOCKER" build -f operator/Dockerfile \
  --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "VERSION=$VERSION" "${secret[@]}" \
  -t "$IMAGE:$TAG" -t "$IMAGE:$VERSION" .
size=$("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE:$TAG")
log "built $IMAGE:$TAG (= $IMAGE:$VERSION) in $(( $(date +%s) - started )) s: $(( size / 1000000 )) MB"
