# shellcheck shell=bash
# shellcheck disable=SC2034  # the settings are used by the scripts that source this file
# Shared settings for hack/cluster/*.sh; sourced, never run. Pinned versions live here only.
#
# Env (all optional):
#   KUBETUNE_CACHE  cache root                  (default ~/.cache/kubetune)
#   CLUSTER_DIR     the cluster's working folder (default $KUBETUNE_CACHE/cluster)
#   GO              go binary                   (default: go on PATH, else /usr/local/go/bin/go)
#   KUBETUNE_K8S_VERSION  another v1.28.x patch release
#   KIND_NODE_IMAGE another kind node image (hack/e2e-kind.sh)

# 1.28 pairs with Debian bookworm's containerd 1.6.20 (see docs/cluster.md). Not v1.28.7: the
# module proxy here refuses k8s.io/{endpointslice,kube-controller-manager}@v0.28.7 (403).
K8S_VERSION=${KUBETUNE_K8S_VERSION:-v1.28.15}
HELM_VERSION=v3.16.4
KUBECONFORM_VERSION=v0.6.7
# hack/e2e-kind.sh only: kind (`go install sigs.k8s.io/kind@$KIND_VERSION`) and the node image
# that kind release published for Kubernetes 1.28, pinned by digest (kind builds its node images per
# release, so the two change together). The node runs v1.28.0; the kubectl and helm driving it are
# the ones above (K8S_VERSION's kubectl: same minor version, within the supported skew).
KIND_VERSION=v0.20.0
KIND_NODE_IMAGE=${KIND_NODE_IMAGE:-kindest/node:v1.28.0@sha256:b7a4cad12c197af3ba43202d3efe03246b3f0793f162afb40a33c923952d5b31}

KUBETUNE_CACHE=${KUBETUNE_CACHE:-$HOME/.cache/kubetune}
CLUSTER_DIR=${CLUSTER_DIR:-$KUBETUNE_CACHE/cluster}
BIN_DIR=$KUBETUNE_CACHE/bin/$K8S_VERSION
HACK_CLUSTER=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

NODE_NAME=kubetune-node
API_IP=10.255.0.1             # held by the empty bridge $API_BRIDGE; apiserver + kubelet bind here
API_BRIDGE=kt-api0
POD_BRIDGE=cni0
SERVICE_CIDR=10.96.0.0/24
KUBERNETES_SVC_IP=10.96.0.1
CLUSTER_CIDR=10.244.0.0/16
PAUSE_IMAGE=local/pause:3.9           # containerd calls it docker.io/local/pause:3.9
PYTHON_BASE_IMAGE=local/python-base:dev
CONTAINERD_SOCK=$CLUSTER_DIR/run/containerd/containerd.sock
ADMIN_KUBECONFIG=$CLUSTER_DIR/kubeconfig/admin.kubeconfig

# sysctls the kubelet rewrites (saved before start, restored on the way down)
# (and, belt and braces, the conntrack timeouts kube-proxy would set if its config did not say 0)
KUBELET_SYSCTLS=(kernel.panic kernel.panic_on_oops vm.overcommit_memory
  net.netfilter.nf_conntrack_tcp_timeout_close_wait net.netfilter.nf_conntrack_tcp_timeout_established)

_script=$(basename "$0" .sh)
die() { echo "cluster/$_script: ERROR: $*" >&2; exit 1; }
log() { echo "cluster/$_script: $*" >&2; }

need_root() { [[ $(id -u) == 0 ]] || die "must run as root"; }

go_bin() {
  if [[ -n ${GO:-} ]]; then echo "$GO"
  elif command -v go >/dev/null 2>&1; then command -v go
  elif [[ -x /usr/local/go/bin/go ]]; then echo /usr/local/go/bin/go
  else die "no go toolchain (set GO=...)"; fi
}

# apt-get install the given packages if any is missing; apt-get update at most once per run
_APT_UPDATED=0
apt_ensure() {
  local missing=() p
  for p in "$@"; do
    [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == 'install ok installed' ]] || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # one apt at a time across concurrent scripts (docker-up.sh may be installing too)
  (
    flock -w 900 8 || die "timed out waiting for the apt lock"
    if ((_APT_UPDATED == 0)); then apt-get -o DPkg::Lock::Timeout=600 update -qq || die "apt-get update failed"; fi
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
      || die "apt-get install ${missing[*]} failed"
  ) 8>"$KUBETUNE_CACHE/apt.lock"
  _APT_UPDATED=1
}

# A process is ours only if its pid file (RUN/<component>.pid) names a live process whose
# executable is that component (guards against a recycled pid after a reboot).
pid_alive() {
  local pid exe
  [[ -f $1 ]] || return 1
  pid=$(cat "$1")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  exe=${exe% (deleted)}
  [[ ${exe##*/} == "$(basename "$1" .pid)" ]]
}
