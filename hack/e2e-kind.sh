#!/usr/bin/env bash
# Run the e2e suite (tests/e2e) on a throwaway kind cluster: create it, run, delete it.
#
#   hack/e2e-kind.sh [pytest args...]
#
# Needs docker, Go (for `go install` of kind, helm and kubectl's peers when missing) and a network
# that can pull the kind node image. It cannot run on the offline machines (no image can be pulled
# there); use `.venv/bin/pytest tests/e2e -m e2e` against the offline cluster instead.
#
# Env: KIND_CLUSTER_NAME (default kubetune-e2e), KIND_NODE_IMAGE (default below),
#      KEEP_CLUSTER=1 keeps the cluster afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

# kind v0.20.0 and the node image its release published for Kubernetes 1.28 (pinned by digest:
# kind node images are built per kind release).
KIND_VERSION=v0.20.0
KIND_NODE_IMAGE=${KIND_NODE_IMAGE:-kindest/node:v1.28.0@sha256:b7a4cad12c197af3ba43202d3efe03246b3f0793f162afb40a33c923952d5b31}
HELM_VERSION=v3.16.4
KUBECTL_VERSION=v1.28.7
export KIND_CLUSTER_NAME=${KIND_CLUSTER_NAME:-kubetune-e2e}

die() { echo "e2e-kind: ERROR: $*" >&2; exit 1; }
log() { echo "e2e-kind: $*" >&2; }

TOOLS=${KUBETUNE_CACHE:-$HOME/.cache/kubetune}/kind-tools
mkdir -p "$TOOLS"
export PATH=$TOOLS:$PATH
command -v docker >/dev/null || die "docker is required"
docker info >/dev/null 2>&1 || die "docker is not answering"
[[ -x $TOOLS/kind ]] || GOBIN=$TOOLS go install "sigs.k8s.io/kind@$KIND_VERSION"
[[ -x $TOOLS/helm ]] || GOBIN=$TOOLS go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
if ! command -v kubectl >/dev/null; then
  curl -fsSLo "$TOOLS/kubectl" "https://dl.k8s.io/release/$KUBECTL_VERSION/bin/linux/amd64/kubectl"
  chmod +x "$TOOLS/kubectl"
fi
[[ -x .venv/bin/pytest ]] || die "no .venv: run make setup first"

export KUBECONFIG=$TOOLS/$KIND_CLUSTER_NAME.kubeconfig
cleanup() {
  if [[ ${KEEP_CLUSTER:-0} != 1 ]]; then kind delete cluster --name "$KIND_CLUSTER_NAME" || true; fi
}
trap cleanup EXIT
if ! kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER_NAME"; then
  log "creating kind cluster $KIND_CLUSTER_NAME ($KIND_NODE_IMAGE)"
  kind create cluster --name "$KIND_CLUSTER_NAME" --image "$KIND_NODE_IMAGE" --wait 120s
fi
kind export kubeconfig --name "$KIND_CLUSTER_NAME" --kubeconfig "$KUBECONFIG"

# Both images are built from python:3.11-slim (pulled; the offline debootstrap base is for the
# offline machines) and loaded with `kind load docker-image` by the suite's fixture.
export BASE_IMAGE=${BASE_IMAGE:-python:3.11-slim}
KUBETUNE_CLUSTER=kind HELM=$TOOLS/helm .venv/bin/pytest tests/e2e -m e2e -v "$@"
