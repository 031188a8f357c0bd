#!/usr/bin/env bash
# Check that the local cluster runs real workloads (after up.sh; the image must be loaded):
#   - a batch/v1 Job on local/python-base:dev writes a JSON termination message, and its logs are readable
#   - a pod reaches the API server through $KUBERNETES_SERVICE_HOST:443 (kube-proxy) with its SA token
#   hack/cluster/smoke.sh       # exit 0 when all hold; leaves nothing behind
set -euo pipefail
# shellcheck source-path=SCRIPTDIR  # lib.sh is sourced from this script's own folder
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export KUBECONFIG=$ADMIN_KUBECONFIG
KUBECTL=$BIN_DIR/kubectl
NS=kubetune-smoke
SECONDS=0

"$HACK_CLUSTER/load-image.sh" "$PYTHON_BASE_IMAGE"
"$KUBECTL" get nodes -o wide >&2
"$KUBECTL" delete namespace "$NS" --ignore-not-found --wait=true >/dev/null
"$KUBECTL" create namespace "$NS" >/dev/null
trap '"$KUBECTL" delete namespace "$NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true' EXIT
# a fresh namespace gets its default service account from the controller-manager a moment later
for _ in $(seq 1 40); do "$KUBECTL" -n "$NS" get sa default >/dev/null 2>&1 && break; sleep 0.25; done

"$KUBECTL" -n "$NS" apply -f - >/dev/null <<YAML
apiVersion: batch/v1
kind: Job
metadata: {name: metric}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: trial
        image: $PYTHON_BASE_IMAGE
        imagePullPolicy: Never
        command: [python3, -c, "import json; print('trial says hi'); open('/dev/termination-log','w').write(json.dumps({'accuracy': 0.5}))"]
---
apiVersion: batch/v1
kind: Job
metadata: {name: apicall}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: call
        image: $PYTHON_BASE_IMAGE
        imagePullPolicy: Never
        command:
        - python3
        - -c
        - |
          import os, ssl, urllib.request
          sa = "/var/run/secrets/kubernetes.io/serviceaccount"
          url = "https://%s:%s/readyz" % (os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"])
          req = urllib.request.Request(url, headers={"Authorization": "Bearer " + open(sa + "/token").read()})
          body = urllib.request.urlopen(req, context=ssl.create_default_context(cafile=sa + "/ca.crt"), timeout=10).read()
          print(url, body.decode())
YAML
for job in metric apicall; do
  "$KUBECTL" -n "$NS" wait --for=condition=complete "job/$job" --timeout=120s >/dev/null || {
    "$KUBECTL" -n "$NS" describe "job/$job" >&2
    "$KUBECTL" -n "$NS" describe pods -l "job-name=$job" >&2
    die "job $job did not complete"
  }
done
msg=$("$KUBECTL" -n "$NS" get pods -l job-name=metric \
  -o jsonpath='{.items[0].status.containerStatuses[0].state.terminated.message}')
[[ $msg == '{"accuracy": 0.5}' ]] || die "termination message is '$msg'"
logs=$("$KUBECTL" -n "$NS" logs job/metric)
[[ $logs == 'trial says hi' ]] || die "kubectl logs gave '$logs'"
api=$("$KUBECTL" -n "$NS" logs job/apicall)
[[ $api == "https://$KUBERNETES_SVC_IP:443/readyz ok" ]] || die "in-cluster API call gave '$api'"
log "termination message: $msg"
log "logs: $logs"
log "from a pod: $api"
log "smoke ok in ${SECONDS}s"
