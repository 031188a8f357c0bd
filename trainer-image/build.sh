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

source hack/image-build.sh

IMAGE=${IMAGE:-kubetune/trainer}
TAG=${TAG:-dev}
TORCH_INDEX_URL=${TORCH_INDEX_URL:-}

[[ -n $TORCH_INDEX_URL ]] && echo "trainer-image/build.sh: torch from $TORCH_INDEX_URL" >&2
build_image trainer-image/build.sh trainer-image/Dockerfile "$IMAGE:$TAG" -- --build-arg "TORCH_INDEX_URL=$TORCH_INDEX_URL"
