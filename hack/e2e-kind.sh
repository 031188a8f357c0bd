#!/usr/bin/env bash
# Run the e2e suite (tests/e2e) on a throwaway kind cluster: create it, run, delete it.
#
#   hack/e2e-kind.sh [pytest args...]
#
# Needs docker, Go >= 1.22 (helm's go.mod) and a network that reaches the Go module proxy and can
# pull the kind node image. It cannot run on the offline machines (no node image can be pulled
# there); use `.venv/bin/pytest tests/e2e -m e2e` against the offline cluster instead.
#
# Every version comes from hack/cluster/lib.sh: kind (`go install sigs.k8s.io/kind@$KIND_VERSION`),
# its node image (by digest), and kubectl ($K8S_VERSION) and helm ($HELM_VERSION), which
# `hack/cluster/build.sh --client` builds with Go from the module proxy and caches (no root needed).
#
# Env: KIND_CLUSTER_NAME (default kubetune-e2e), KIND_NODE_IMAGE (default: lib.sh's),
#      KEEP_CLUSTER=1 keeps the cluster afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source-path=SCRIPTDIR/..  # the repository root: sourced after the cd above
source hack/cluster/lib.sh
export KIND_CLUSTER_NAME=${KIND_CLUSTER_NAME:-kubetune-e2e}

die() { echo "e2e-kind: ERROR: $*" >&2; exit 1; }
log() { echo "e2e-kind: $*" >&2; }

command -v docker >/dev/null || die "docker is required"
docker info >/dev/null 2>&1 || die "docker is not answering"
[[ -x .venv/bin/pytest ]] || die "no .venv: run make setup first"

# kubectl and helm: the pinned builds of build.sh, cached in the folder bin-path.sh prints
hack/cluster/build.sh --client >/dev/null
TOOLS_BIN=$(hack/cluster/bin-path.sh)
KUBECTL=$TOOLS_BIN/kubectl HELM=$TOOLS_BIN/helm
[[ -x $KUBECTL && -x $HELM ]] || die "hack/cluster/build.sh --client left no kubectl and helm in $TOOLS_BIN"

# kind: one folder per pinned version, so changing the pin installs the new one
TOOLS=$KUBETUNE_CACHE/kind-tools
KIND=$TOOLS/$KIND_VERSION/kind
mkdir -p "$TOOLS/$KIND_VERSION"
if [[ ! -x $KIND ]]; then
  go=$(go_bin)
  log "go install sigs.k8s.io/kind@$KIND_VERSION"
  GOBIN=$TOOLS/$KIND_VERSION "$go" install "sigs.k8s.io/kind@$KIND_VERSION"
fi
export PATH=$TOOLS_BIN:$TOOLS/$KIND_VERSION:$PATH

export KUBECONFIG=$TOOLS/$KIND_CLUSTER_NAME.kubeconfig
cleanup() {
  if [[ ${KEEP_CLUSTER:-0} != 1 ]]; then "$KIND" delete cluster --name "$KIND_CLUSTER_NAME" || true; fi
}
trap cleanup EXIT
if ! "$KIND" get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER_NAME"; then
  log "creating kind cluster $KIND_CLUSTER_NAME ($KIND_NODE_IMAGE)"
  "$KIND" create cluster --name "$KIND_CLUSTER_NAME" --image "$KIND_NODE_IMAGE" --wait 120s
fi
"$KIND" export kubeconfig --name "$KIND_CLUSTER_NAME" --kubeconfig "$KUBECONFIG"

# Both images are built from python:3.11-slim (pulled; the offline debootstrap base is for the
# offline machines) and loaded with `kind load docker-image` by the suite's fixture, which finds
# kind, kubectl and helm through these variables (tests/e2e/tools.py).
export BASE_IMAGE=${BASE_IMAGE:-python:3.11-slim}
KUBETUNE_CLUSTER=kind KIND=$KIND KUBECTL=$KUBECTL HELM=$HELM .venv/bin/pytest tests/e2e -m e2e -v "$@"
