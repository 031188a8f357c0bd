#!/usr/bin/env bash
# Bring up the local single-node cluster (upstream binaries run on the host; see docs/cluster.md).
#
#   hack/cluster/up.sh        # idempotent: an already healthy cluster is left alone (exit 0)
#   export KUBECONFIG=$(hack/cluster/kubeconfig-path.sh)
# stdout: "# kubetune-cluster: started" or "# kubetune-cluster: already-up", then "export KUBECONFIG=...".
#
# Needs hack/cluster/build.sh (binaries) and docker with local/pause:3.9 (built here if missing).
# Also imports local/python-base:dev into containerd when docker has it.
# Logs: $CLUSTER_DIR/logs/<component>.log; pid files: $CLUSTER_DIR/run/<component>.pid
set -euo pipefail
# shellcheck source-path=SCRIPTDIR  # lib.sh is sourced from this script's own folder
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_root
T_START=$(date +%s)
SECONDS=0

KUBECTL=$BIN_DIR/kubectl
for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
  [[ -x $BIN_DIR/$b ]] || die "$BIN_DIR/$b missing: run hack/cluster/build.sh first"
done
for b in etcd containerd ctr runc iptables openssl ip; do
  command -v "$b" >/dev/null || die "$b not installed: run hack/cluster/build.sh first"
done
[[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local ]] || die "CNI plugins missing in /usr/lib/cni: run hack/cluster/build.sh"

PKI=$CLUSTER_DIR/pki
KCFG=$CLUSTER_DIR/kubeconfig
ETC=$CLUSTER_DIR/etc
RUN=$CLUSTER_DIR/run
LOGS=$CLUSTER_DIR/logs
mkdir -p "$CLUSTER_DIR"

exec 9>"$CLUSTER_DIR/.lock"
flock -w 300 9 || die "another up.sh/down.sh holds $CLUSTER_DIR/.lock"
T_START=$(date +%s)   # after the wait for the lock: "fresh" means newer than this
# (after the lock: a down.sh --purge we waited for removes the whole folder)
mkdir -p "$PKI" "$KCFG" "$ETC/cni/net.d" "$RUN/containerd" "$LOGS" "$CLUSTER_DIR/etcd" \
  "$CLUSTER_DIR/node/kubelet" "$CLUSTER_DIR/node/cni/ipam" "$CLUSTER_DIR/node/kubelet-plugins/volume/exec" \
  "$CLUSTER_DIR/node/controller-manager-flexvolume"
chmod 700 "$PKI" "$CLUSTER_DIR/etcd"

COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy)

kc() { "$KUBECTL" --kubeconfig "$ADMIN_KUBECONFIG" --request-timeout=5s "$@"; }

node_ready_since() { # $1 epoch: succeeds if the node is Ready with a heartbeat at or after $1
  local out status hb
  out=$(kc get node "$NODE_NAME" -o \
    jsonpath='{range .status.conditions[?(@.type=="Ready")]}{.status} {.lastHeartbeatTime}{end}' 2>/dev/null) || return 1
  read -r status hb <<<"$out"
  [[ $status == True && -n $hb ]] && (($(date -d "$hb" +%s) >= $1))
}

# --- already up? -----------------------------------------------------------------------------------
alive=0
for c in "${COMPONENTS[@]}"; do pid_alive "$RUN/$c.pid" && alive=$((alive + 1)); done
# the Ready condition's heartbeat moves only every 5 min when nothing changes; the node lease every 10 s
lease_fresh() {
  local renew
  renew=$(kc -n kube-node-lease get lease "$NODE_NAME" -o jsonpath='{.spec.renewTime}' 2>/dev/null) || return 1
  [[ -n $renew ]] && (($(date -d "$renew" +%s) >= T_START - 40))
}
node_ready() {
  [[ $(kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}
healthy() { kc get --raw /readyz >/dev/null 2>&1 && node_ready && lease_fresh; }
if ((alive == ${#COMPONENTS[@]})); then
  # all processes run: give a loaded machine time to answer before calling the cluster unhealthy,
  # because the way out (down.sh, then a start) interrupts whoever is using it
  for ((i = 0; i < 12; i++)); do
    healthy && break
    sleep 2.5
  done
fi
if ((alive == ${#COMPONENTS[@]})) && healthy; then
  log "cluster already up and healthy ($CLUSTER_DIR)"
  # for callers that stop only a cluster they started (a concurrent up.sh may have started it)
  echo "# kubetune-cluster: already-up"
  echo "export KUBECONFIG=$ADMIN_KUBECONFIG"
  exit 0
fi
if ((alive > 0)); then
  log "cluster partially up ($alive/${#COMPONENTS[@]} components) or unhealthy: stopping it first"
  flock -u 9
  "$HACK_CLUSTER/down.sh"
  flock -w 300 9 || die "could not re-take $CLUSTER_DIR/.lock"
fi

# anything else on our ports would make a component fail in confusing ways
busy=$(ss -Hltn 2>/dev/null | awk '{print $4}' | grep -E "^(127\.0\.0\.1|$API_IP|0\.0\.0\.0|\*|\[::\]):(2379|2380|6443|10248|10249|10250|10256|10257|10259)$" || true)
[[ -z $busy ]] || die "ports already in use by something else: $busy ($(ss -Hltnp | grep -E ':(2379|2380|6443|1025[0-9])\b' | head -5))"

# --- certificates ----------------------------------------------------------------------------------
# one CA for everything but the front proxy; EC P-256 keys; 10 years (a throwaway test cluster)
sign() { # name subject ext(lines) [ca]
  local name=$1 subj=$2 ext=$3 ca=${4:-ca}
  [[ -s $PKI/$name.crt && -s $PKI/$name.key ]] && return
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile <(printf '%s\n' "$ext") -out "$PKI/$name.crt" 2>/dev/null \
    || die "openssl could not sign $name"
  rm -f "$PKI/$name.csr"
}
make_ca() { # name CN
  [[ -s $PKI/$1.crt && -s $PKI/$1.key ]] && return
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -days 3650 -sha256 \
    -keyout "$PKI/$1.key" -subj "/CN=$2" -out "$PKI/$1.crt" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null \
    || die "openssl could not make CA $1"
}
CLIENT_EXT=$'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth'
make_ca ca kubetune-ca
make_ca front-proxy-ca kubetune-front-proxy-ca
sign apiserver /CN=kube-apiserver "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:$API_IP,IP:$KUBERNETES_SVC_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
sign admin "/O=system:masters/CN=kubetune-admin" "$CLIENT_EXT"
# system:masters: kubectl logs/exec go apiserver -> kubelet, and the kubelet authorizes by webhook
sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$CLIENT_EXT"
sign controller-manager /CN=system:kube-controller-manager "$CLIENT_EXT"
sign scheduler /CN=system:kube-scheduler "$CLIENT_EXT"
sign kube-proxy /CN=system:kube-proxy "$CLIENT_EXT"
sign kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" "$CLIENT_EXT"
sign front-proxy-client /CN=front-proxy-client "$CLIENT_EXT" front-proxy-ca
if [[ ! -s $PKI/sa.key ]]; then
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/sa.key" 2>/dev/null
  openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
fi

# --- kubeconfigs (certs embedded) ----------------------------------------------------------------
kubeconfig() { # file user cert
  local f=$KCFG/$1.kubeconfig
  [[ -s $f ]] && return
  "$KUBECTL" config --kubeconfig "$f.tmp" set-cluster kubetune --server "https://$API_IP:6443" \
    --certificate-authority "$PKI/ca.crt" --embed-certs >/dev/null
  "$KUBECTL" config --kubeconfig "$f.tmp" set-credentials "$2" --client-certificate "$PKI/$3.crt" \
    --client-key "$PKI/$3.key" --embed-certs >/dev/null
  "$KUBECTL" config --kubeconfig "$f.tmp" set-context kubetune --cluster kubetune --user "$2" >/dev/null
  "$KUBECTL" config --kubeconfig "$f.tmp" use-context kubetune >/dev/null
  chmod 600 "$f.tmp" && mv "$f.tmp" "$f"
}
kubeconfig admin kubetune-admin admin
kubeconfig controller-manager system:kube-controller-manager controller-manager
kubeconfig scheduler system:kube-scheduler scheduler
kubeconfig kube-proxy system:kube-proxy kube-proxy
kubeconfig kubelet "system:node:$NODE_NAME" kubelet

# --- configs from templates ------------------------------------------------------------------------
render() { sed "s#\${CLUSTER_DIR}#$CLUSTER_DIR#g" "$HACK_CLUSTER/$1" >"$2"; }
render containerd.toml "$ETC/containerd.toml"
render kubelet-config.yaml "$ETC/kubelet-config.yaml"
render kube-proxy-config.yaml "$ETC/kube-proxy-config.yaml"
render 10-bridge.conflist "$ETC/cni/net.d/10-bridge.conflist"

# --- host state: sysctls, the API address -----------------------------------------------------------
if [[ ! -s $RUN/sysctls.saved ]]; then
  for s in "${KUBELET_SYSCTLS[@]}"; do
    [[ -e /proc/sys/${s//.//} ]] && echo "$s=$(sysctl -n "$s")"
  done >"$RUN/sysctls.saved.tmp"
  mv "$RUN/sysctls.saved.tmp" "$RUN/sysctls.saved"
fi
# no dummy driver in these kernels: an empty bridge holds the API address
ip link show "$API_BRIDGE" >/dev/null 2>&1 || ip link add "$API_BRIDGE" type bridge || die "cannot create bridge $API_BRIDGE"
ip addr replace "$API_IP/32" dev "$API_BRIDGE"
ip link set "$API_BRIDGE" up
# unmatched ClusterIP traffic dies locally instead of following a default route
ip route replace "$SERVICE_CIDR" dev "$API_BRIDGE"

# --- processes -------------------------------------------------------------------------------------
start() { # name binary args...
  local name=$1; shift
  pid_alive "$RUN/$name.pid" && die "$name already running (pid $(cat "$RUN/$name.pid"))"
  echo "=== $(date -u +%FT%TZ) up.sh starting $name" >>"$LOGS/$name.log"
  # setsid: own session, survives this shell; 9>&-: must not hold our lock
  setsid "$@" </dev/null >>"$LOGS/$name.log" 2>&1 9>&- &
  echo $! >"$RUN/$name.pid"
}
wait_for() { # name timeout_s command...
  local name=$1 timeout=$2 i; shift 2
  for ((i = 0; i < timeout * 4; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    pid_alive "$RUN/$name.pid" || { tail -n 25 "$LOGS/$name.log" >&2; die "$name exited; see $LOGS/$name.log"; }
    sleep 0.25
  done
  tail -n 25 "$LOGS/$name.log" >&2
  die "$name not ready after ${timeout}s; see $LOGS/$name.log"
}

start etcd etcd --name kubetune --data-dir "$CLUSTER_DIR/etcd" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster kubetune=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381 \
  --auto-compaction-retention=1h --quota-backend-bytes=2147483648
wait_for etcd 30 curl -fsS http://127.0.0.1:2379/health

start kube-apiserver "$BIN_DIR/kube-apiserver" \
  --etcd-servers=http://127.0.0.1:2379 \
  --bind-address="$API_IP" --advertise-address="$API_IP" --secure-port=6443 \
  --client-ca-file="$PKI/ca.crt" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
  --kubelet-preferred-address-types=InternalIP \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction --allow-privileged=true \
  --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
  --requestheader-extra-headers-prefix=X-Remote-Extra- --requestheader-group-headers=X-Remote-Group \
  --requestheader-username-headers=X-Remote-User \
  --proxy-client-cert-file="$PKI/front-proxy-client.crt" --proxy-client-key-file="$PKI/front-proxy-client.key" \
  --profiling=false
wait_for kube-apiserver 60 kc get --raw /readyz

start kube-controller-manager "$BIN_DIR/kube-controller-manager" \
  --kubeconfig="$KCFG/controller-manager.kubeconfig" --bind-address=127.0.0.1 --leader-elect=false \
  --root-ca-file="$PKI/ca.crt" --service-account-private-key-file="$PKI/sa.key" \
  --use-service-account-credentials=true \
  --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
  --allocate-node-cidrs=true --cluster-cidr="$CLUSTER_CIDR" --node-cidr-mask-size=24 \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --flex-volume-plugin-dir="$CLUSTER_DIR/node/controller-manager-flexvolume" --profiling=false
start kube-scheduler "$BIN_DIR/kube-scheduler" \
  --kubeconfig="$KCFG/scheduler.kubeconfig" --bind-address=127.0.0.1 --leader-elect=false --profiling=false

start containerd containerd --config "$ETC/containerd.toml"
wait_for containerd 30 ctr --address "$CONTAINERD_SOCK" version

# sandbox image first (the kubelet would try to pull it), the Python base when docker has it
"$HACK_CLUSTER/../docker-up.sh"
/usr/bin/docker image inspect "$PAUSE_IMAGE" >/dev/null 2>&1 || "$HACK_CLUSTER/images.sh" --pause-only
images=("$PAUSE_IMAGE")
/usr/bin/docker image inspect "$PYTHON_BASE_IMAGE" >/dev/null 2>&1 && images+=("$PYTHON_BASE_IMAGE")
"$HACK_CLUSTER/load-image.sh" "${images[@]}"

T_KUBELET=$(date +%s)
start kubelet "$BIN_DIR/kubelet" \
  --config="$ETC/kubelet-config.yaml" --kubeconfig="$KCFG/kubelet.kubeconfig" \
  --root-dir="$CLUSTER_DIR/node/kubelet" --cert-dir="$CLUSTER_DIR/node/kubelet/pki" \
  --hostname-override="$NODE_NAME" --node-ip="$API_IP" \
  --pod-infra-container-image="docker.io/$PAUSE_IMAGE"
start kube-proxy "$BIN_DIR/kube-proxy" --config="$ETC/kube-proxy-config.yaml"

# pitfall: after a restart the node shows the old Ready=True for up to 40 s
wait_for kubelet 120 node_ready_since "$T_KUBELET"
T_READY=$SECONDS
# what the first test needs: a default service account, and kube-proxy's rule for the API service
wait_for kube-controller-manager 60 kc -n default get serviceaccount default
# (no `| grep -q` under pipefail: grep quitting early can fail the writer with SIGPIPE)
has_api_rule() { [[ $(iptables -w -t nat -S KUBE-SERVICES 2>/dev/null) == *"-d $KUBERNETES_SVC_IP/32"* ]]; }
wait_for kube-proxy 60 has_api_rule

date +%s >"$RUN/up-at"
log "cluster up: node $NODE_NAME Ready after ${T_READY}s, usable after ${SECONDS}s (logs: $LOGS)"
echo "# kubetune-cluster: started"
echo "export KUBECONFIG=$ADMIN_KUBECONFIG"
