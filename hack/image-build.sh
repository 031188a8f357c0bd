# Shared by the image build scripts (source it): find docker, pick the base image, pass the pip CA
# bundle as a BuildKit secret, build, report the size.
#
#   source hack/image-build.sh
#   build_image NAME DOCKERFILE TAG... -- [docker build args...]
#
# Env: BASE_IMAGE (default: local/python-base:dev when docker has it or hack/cluster/images.sh can
# make it, else python:3.11-slim), PIP_CA_BUNDLE (default /etc/ssl/certs/ca-certificates.crt, passed
# as the BuildKit secret `pipcert` when it exists), DOCKER (default: the docker.io client, whose
# built-in BuildKit needs no buildx plugin).
# shellcheck shell=bash

LOCAL_BASE=local/python-base:dev

_image_log() { echo "$IMAGE_BUILD_NAME: $*" >&2; }
_image_die() { echo "$IMAGE_BUILD_NAME: ERROR: $*" >&2; exit 1; }

_resolve_docker() {
  DOCKER=${DOCKER:-$(command -v /usr/bin/docker || command -v docker || true)}
  if ! "${DOCKER:-docker}" info >/dev/null 2>&1; then
    [[ -x hack/docker-up.sh ]] || _image_die "no docker engine answering and no hack/docker-up.sh"
    hack/docker-up.sh
    DOCKER=${DOCKER:-$(command -v /usr/bin/docker || command -v docker)}
  fi
}

_resolve_base_image() {
  [[ -n ${BASE_IMAGE:-} ]] && return
  if "$DOCKER" image inspect "$LOCAL_BASE" >/dev/null 2>&1; then
    BASE_IMAGE=$LOCAL_BASE
  elif [[ -x hack/cluster/images.sh ]]; then
    _image_log "making $LOCAL_BASE with hack/cluster/images.sh"
    hack/cluster/images.sh
    BASE_IMAGE=$LOCAL_BASE
  else
    BASE_IMAGE=python:3.11-slim
  fi
}

# build_image NAME DOCKERFILE TAG... -- [docker build args...]: tags are full image references
build_image() {
  IMAGE_BUILD_NAME=$1 dockerfile=$2
  shift 2
  local tags=() args=()
  while [[ $# -gt 0 && $1 != -- ]]; do tags+=(-t "$1"); shift; done
  [[ ${1:-} == -- ]] && shift
  args=("$@")
  _resolve_docker
  _resolve_base_image
  local ca=${PIP_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt} secret=()
  [[ -s $ca ]] && secret=(--secret "id=pipcert,src=$ca")
  _image_log "building ${tags[1]} from $BASE_IMAGE"
  local started size
  started=$(date +%s)
  DOCKER_BUILDKIT=1 "$DOCKER" build -f "$dockerfile" --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    "${secret[@]}" "${args[@]}" "${tags[@]}" .
  size=$("$DOCKER" image inspect -f '{{.Size}}' "${tags[1]}")
  _image_log "built ${tags[1]} in $(( $(date +%s) - started )) s: $(( size / 1000000 )) MB"
}
