#!/usr/bin/env bash
# Stop the local cluster and undo what it changed on the host. Idempotent.
#
#   hack/cluster/down.sh            # keeps etcd data, certs, containerd's images (fast warm start)
#   hack/cluster/down.sh --purge    # also deletes everything in $CLUSTER_DIR (etcd, certs, images, logs)
#
# Stops exactly the processes named by its pid files (never by name), kills and deletes the pods'
# containerd tasks, removes their network namespaces, the hard-coded host paths the kubelet and
# containerd use, the KUBE-* iptables chains (docker's are left alone), the two bridges, and
# restores the sysctls the kubelet rewrites.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR  # lib.sh is sourced from this script's own folder
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_root
PURGE=0
for arg in "$@"; do
  case $arg in
    --purge) PURGE=1 ;;
    *) die "usage: $0 [--purge]" ;;
  esac
done

RUN=$CLUSTER_DIR/run
STATE=$RUN/containerd/state
if [[ ! -d $CLUSTER_DIR ]]; then
  log "nothing to do: $CLUSTER_DIR does not exist"
  exit 0
fi
exec 9>"$CLUSTER_DIR/.lock"
flock -w 300 9 || die "another up.sh/down.sh holds $CLUSTER_DIR/.lock"
problems=0
warn() { log "WARNING: $*"; problems=$((problems + 1)); }

# alive and not a zombie (our daemons are reparented to pid 1, which may reap them late)
running() { kill -0 "$1" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) != Z ]]; }

stop() { # component [grace_s]
  local f=$RUN/$1.pid grace=${2:-10} pid i
  if pid_alive "$f"; then
    pid=$(cat "$f")
    local t0=$EPOCHREALTIME
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do running "$pid" || break; sleep 0.1; done
    if running "$pid"; then
      log "$1 (pid $pid) ignored SIGTERM for ${grace}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    fi
    log "stopped $1 (pid $pid) in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
  fi
  rm -f "$f"
}

# 1. the node agents first, so nothing restarts pods while they are torn down
stop kubelet
stop kube-proxy

# 2. pods: kill and delete every task and container in containerd's k8s.io namespace
if pid_alive "$RUN/containerd.pid" && [[ -S $CONTAINERD_SOCK ]]; then
  CTR=(ctr --address "$CONTAINERD_SOCK" --namespace k8s.io)
  t0=$SECONDS
  mapfile -t tasks < <("${CTR[@]}" tasks ls -q 2>/dev/null || true)
  for t in "${tasks[@]}"; do "${CTR[@]}" tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true; done
  for t in "${tasks[@]}"; do
    for _ in $(seq 1 20); do "${CTR[@]}" tasks delete "$t" >/dev/null 2>&1 && break; sleep 0.25; done
    "${CTR[@]}" tasks delete -f "$t" >/dev/null 2>&1 || true
  done
  mapfile -t ctrs < <("${CTR[@]}" containers ls -q 2>/dev/null || true)
  if ((${#ctrs[@]})); then "${CTR[@]}" containers delete "${ctrs[@]}" >/dev/null 2>&1 || true; fi
  ((${#tasks[@]} + ${#ctrs[@]} == 0)) || log "deleted ${#tasks[@]} tasks, ${#ctrs[@]} containers in $((SECONDS - t0)) s"
fi
stop containerd 15
# whatever containerd could not clean (it was dead, or a shim hung): the bundles' own pid files
if [[ -d $STATE/io.containerd.runtime.v2.task ]]; then
  for pf in "$STATE"/io.containerd.runtime.v2.task/*/*/{init,shim}.pid; do
    [[ -f $pf ]] || continue
    pid=$(cat "$pf" 2>/dev/null || true)
    if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
      log "killing leftover $(basename "$pf" .pid) pid $pid ($(tr '\0' ' ' </proc/"$pid"/cmdline | cut -c1-80))"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
fi

# 3. the control plane
stop kube-scheduler
stop kube-controller-manager
stop kube-apiserver
stop etcd 20

# 4. mounts under the cluster folder (pod volumes, rootfs, shm), deepest first
mapfile -t mounts < <(awk -v d="$CLUSTER_DIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || warn "cannot unmount $m"; done

# 5. pod network namespaces (the CRI plugin names them cni-<uuid>) and CNI state
for ns in /var/run/netns/cni-*; do
  [[ -e $ns ]] || continue
  ip netns delete "$(basename "$ns")" 2>/dev/null || { umount "$ns" 2>/dev/null; rm -f "$ns"; } || warn "cannot remove $ns"
done
rm -rf "$CLUSTER_DIR/node/cni/ipam"
rm -f /var/lib/cni/results/kubetune-pods-* /var/lib/cni/results/cni-loopback-*
rmdir /var/lib/cni/results /var/lib/cni /var/run/netns 2>/dev/null || true

# 6. host paths hard-coded upstream
rm -rf /var/log/pods/* /var/log/containers/* /var/lib/kubelet/device-plugins
rmdir /var/log/pods /var/log/containers /var/lib/kubelet 2>/dev/null || true
# shim sockets: only those no process is bound to (docker's containerd keeps its live ones here too)
if [[ -d /run/containerd/s ]]; then
  bound=$(awk 'NR > 1 && $8 != "" { print $8 }' /proc/net/unix | sort -u)
  for s in /run/containerd/s/*; do
    [[ -e $s ]] || continue
    grep -qxF "$s" <<<"$bound" || rm -f "$s"
  done
fi
# runc's state for the k8s.io namespace (hard-coded root; docker's runc state lives elsewhere)
rm -rf /run/containerd/runc/k8s.io
rmdir /run/containerd/runc /run/containerd/s /run/containerd 2>/dev/null || true
# kubepods cgroups, in every v1 hierarchy (and v2's unified one), leaves first
for cg in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
  [[ -d $cg ]] || continue
  find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
  [[ -d $cg ]] && warn "could not remove $cg (processes left in it?)"
done

# 7. iptables: only the KUBE-* chains (kube-proxy's and the kubelet's)
for ipt in iptables ip6tables; do
  command -v "$ipt" >/dev/null || continue
  for table in filter nat mangle; do
    rules=$("$ipt" -w -t "$table" -S 2>/dev/null) || continue
    # jumps into KUBE-* chains from the other chains (built-in ones, docker's): delete them by rule
    # number, last first, so that quoting in the rules (comments) never matters
    mapfile -t others < <(grep -E '^-[PN] ' <<<"$rules" | awk '{print $2}' | grep -v '^KUBE-')
    for chain in "${others[@]}"; do
      mapfile -t nums < <("$ipt" -w -t "$table" -S "$chain" 2>/dev/null | grep -E '^-A ' \
        | awk '/ -j KUBE-/ { print NR }' | sort -rn)
      for n in "${nums[@]}"; do "$ipt" -w -t "$table" -D "$chain" "$n" || warn "$ipt -t $table -D $chain $n failed"; done
    done
    mapfile -t chains < <(grep -E '^-N KUBE-' <<<"$rules" | awk '{print $2}')
    for c in "${chains[@]}"; do "$ipt" -w -t "$table" -F "$c" 2>/dev/null || true; done
    for c in "${chains[@]}"; do "$ipt" -w -t "$table" -X "$c" 2>/dev/null || warn "$ipt -t $table -X $c failed"; done
  done
done

# 8. bridges (their routes go with them)
for br in "$POD_BRIDGE" "$API_BRIDGE"; do
  ip link show "$br" >/dev/null 2>&1 && { ip link delete "$br" || warn "cannot delete $br"; }
done

# 9. sysctls
if [[ -s $RUN/sysctls.saved ]]; then
  while IFS= read -r kv; do sysctl -q -w "$kv" >/dev/null || warn "cannot restore $kv"; done <"$RUN/sysctls.saved"
  rm -f "$RUN/sysctls.saved"
fi
rm -f "$RUN/up-at"

if ((PURGE)); then
  # anything still mounted would make rm -rf walk into it
  if awk -v d="$CLUSTER_DIR/" 'index($5, d) == 1 { f = 1 } END { exit !f }' /proc/self/mountinfo; then
    die "mounts left under $CLUSTER_DIR; not purging"
  fi
  # all but the lock file, which a waiting up.sh may already hold open
  find "$CLUSTER_DIR" -mindepth 1 -maxdepth 1 ! -name .lock -exec rm -rf {} +
  log "purged $CLUSTER_DIR"
fi
((problems == 0)) || die "down finished with $problems problems (see above)"
log "cluster down"
