#!/usr/bin/env bash
# Remove an add-on installed by hack/addons/install.sh from the local cluster (idempotent):
#
#   hack/addons/uninstall.sh jobset|kueue|all        # all: kueue first, then jobset
#
# Order: its webhook configurations first (failurePolicy Fail: no window where a create is refused
# by a webhook whose pod is gone), then its CRDs while the controller still runs (it removes its own
# finalizers from the objects the CRD deletion removes; any left after 90 s are stripped), then the
# rest of what install.sh applied (namespace <name>-system, RBAC). Jobs and pods it managed stay.
# The built binaries and images stay cached (hack/addons/build.sh).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_root
(($# == 1)) || die "usage: $0 jobset|kueue|all"
kc get --raw /readyz >/dev/null 2>&1 || die "the local cluster is not up (hack/cluster/up.sh)"

uninstall_one() {
  local name=$1 version group manifests crds crd kinds kind
  version=$(addon_version "$name")
  group=$name.x-k8s.io
  manifests=$ADDONS_CACHE/manifests/$name-$version.yaml
  mkdir -p "$ADDONS_CACHE"
  exec 6>"$ADDONS_CACHE/.install-$name.lock"
  flock -w 600 6 || die "hack/addons/install.sh $name holds $ADDONS_CACHE/.install-$name.lock"

  log "$name: webhook configurations"
  kc delete mutatingwebhookconfiguration "$name-mutating-webhook-configuration" --ignore-not-found >/dev/null
  kc delete validatingwebhookconfiguration "$name-validating-webhook-configuration" --ignore-not-found >/dev/null

  mapfile -t crds < <(kc get crd -o name | grep -E "\.${group//./\\.}$" || true)
  if ((${#crds[@]})); then
    log "$name: CRDs ${crds[*]#*/}"
    if ! kc delete "${crds[@]}" --ignore-not-found --timeout=90s >/dev/null 2>&1; then
      log "$name: CRD deletion stuck on finalizers: stripping them"
      for crd in "${crds[@]}"; do
        kind=${crd#*/}
        kc get "$kind" -A -o jsonpath='{range .items[*]}{.metadata.namespace}{" "}{.metadata.name}{"\n"}{end}' 2>/dev/null \
          | while read -r ns obj; do
              [[ -n $obj ]] || { obj=$ns; ns=; }
              kc patch "$kind" "$obj" ${ns:+-n "$ns"} --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
            done
      done
      kc delete "${crds[@]}" --ignore-not-found --timeout=60s >/dev/null || die "could not delete ${crds[*]}"
    fi
  fi

  log "$name: namespace $(addon_namespace "$name") and RBAC"
  if [[ -f $manifests ]]; then
    kc delete -f "$manifests" --ignore-not-found --wait=true --timeout=120s >/dev/null
  else  # installed by another checkout/version: by name
    kc delete ns "$(addon_namespace "$name")" --ignore-not-found --timeout=120s >/dev/null
    mapfile -t kinds < <(kc get clusterrole,clusterrolebinding -o name | grep -E "/$name-" || true)
    ((${#kinds[@]} == 0)) || kc delete "${kinds[@]}" --ignore-not-found >/dev/null
  fi
  log "$name: uninstalled"
}

case $1 in
  all) uninstall_one kueue; uninstall_one jobset ;;
  jobset | kueue) uninstall_one "$1" ;;
  *) die "usage: $0 jobset|kueue|all" ;;
esac
