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

# shellcheck source-path=SCRIPTDIR/..  # the repository root: sourced after the cd above
source hack/image-build.sh

IMAGE=${IMAGE:-kubetune/operator}
TAG=${TAG:-dev}
VERSION=$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')

build_image build-operator-image operator/Dockerfile "$IMAGE:$TAG" "$IMAGE:$VERSION" -- --build-arg "VERSION=$VERSION"
