# shellcheck shell=bash
# shellcheck disable=SC2034  # the settings are used by the scripts that source this file
# Shared settings for hack/addons/*.sh (optional cluster add-ons: JobSet, Kueue); sourced, never run.
# Pinned versions live here only.
#
# Env (all optional): KUBETUNE_CACHE, CLUSTER_DIR, GO (as for hack/cluster/*.sh),
#   KUBETUNE_JOBSET_VERSION, KUBETUNE_KUEUE_VERSION  other releases (must be on the Go module proxy)

# JobSet v0.6.0: the newest release the module proxy here serves whose k8s libraries are at most two
# minors ahead of the 1.28 API server (k8s.io/client-go v0.30.4, controller-runtime v0.18.4); v0.7.x
# (client-go 0.31) and v0.8.x (0.32) are there too but further from 1.28; v0.5.3/v0.6.1 are refused (403).
# Kueue v0.8.2: the newest 0.8 release the proxy serves (v0.8.3, v0.8.4 are refused); its Makefile
# runs its e2e suite on Kubernetes 1.27.13, 1.28.9, 1.29.4, 1.30.0 (E2E_K8S_VERSIONS); client-go v0.29.6.
JOBSET_VERSION=${KUBETUNE_JOBSET_VERSION:-v0.6.0}
KUEUE_VERSION=${KUBETUNE_KUEUE_VERSION:-v0.8.2}

# hack/cluster/lib.sh: KUBETUNE_CACHE, BIN_DIR (kubectl), ADMIN_KUBECONFIG, CONTAINERD_SOCK, go_bin, pid_alive
_addons_script=$(basename "$0" .sh)
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/../cluster/lib.sh"
HACK_ADDONS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "addons/$_addons_script: ERROR: $*" >&2; exit 1; }
log() { echo "addons/$_addons_script: $*" >&2; }

ADDONS_CACHE=$KUBETUNE_CACHE/addons
ADDONS_LOGS=$KUBETUNE_CACHE/logs
# Go caches of their own (the k8s build's are elsewhere): module zips and build cache under the cache root
ADDONS_GOMODCACHE=$ADDONS_CACHE/go/mod
ADDONS_GOCACHE=$ADDONS_CACHE/go/build
DOCKER=/usr/bin/docker
KUBECTL=$BIN_DIR/kubectl

addon_version() { # jobset|kueue -> pinned version
  case $1 in
    jobset) echo "$JOBSET_VERSION" ;;
    kueue) echo "$KUEUE_VERSION" ;;
    *) die "unknown add-on '$1' (jobset|kueue)" ;;
  esac
}
addon_module() { echo "sigs.k8s.io/$1"; }
addon_pkg() { # the manager's main package inside the module
  case $1 in
    jobset) echo . ;;           # main.go at the module root
    kueue) echo ./cmd/kueue ;;
  esac
}
addon_ldflags() { # version stamping as the upstream Makefiles do it
  case $1 in
    jobset) echo "-s -w" ;;     # jobset has no version package
    kueue) echo "-s -w -X sigs.k8s.io/kueue/pkg/version.GitVersion=$2" ;;
  esac
}
addon_src() { echo "$ADDONS_CACHE/src/$1-$(addon_version "$1")"; }           # writable copy of the module
addon_bin() { echo "$ADDONS_CACHE/bin/$1-$(addon_version "$1")/manager"; }
addon_image() { echo "local/$1-controller:$(addon_version "$1")"; }          # containerd: docker.io/local/...
addon_namespace() { echo "$1-system"; }

kc() { "$KUBECTL" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }

go_env() {
  export GOFLAGS="-buildvcs=false -modcacherw -mod=mod" GOTOOLCHAIN=local CGO_ENABLED=0
  export GOMODCACHE=$ADDONS_GOMODCACHE GOCACHE=$ADDONS_GOCACHE
  # like hack/cluster/build.sh: the sumdb is not reachable for every k8s module; the modules' own
  # go.sum still pins every hash
  export GONOSUMDB=${GONOSUMDB:+$GONOSUMDB,}k8s.io,sigs.k8s.io
}
