#!/usr/bin/env bash
# Prove an installed add-on works on the local cluster, print what it did, then delete what it made.
#
#   hack/addons/smoke.sh jobset   # JobSet "ok" (1 replicatedJob, replicas 1, parallelism 2 /
#                                 # completions 2, python3 -c 'print(1)') reaches Completed; JobSet
#                                 # "fail" (same, exit 1) reaches Failed; prints their status and a pod's labels
#   hack/addons/smoke.sh kueue    # ResourceFlavor + ClusterQueue (nominal cpu: 1) + LocalQueue; two
#                                 # suspended Jobs requesting cpu 1 each: the first is admitted and runs,
#                                 # the second stays suspended until the first has finished
# Objects: namespace addons-smoke-<name>; for kueue also the cluster-scoped ResourceFlavor
# addons-smoke-flavor and ClusterQueue addons-smoke-cq. KEEP=1 leaves them in place.
# Needs hack/addons/install.sh <name> first, and local/python-base:dev in the cluster (hack/cluster/up.sh).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
(($# == 1)) || die "usage: $0 jobset|kueue"
NAME=$1
addon_version "$NAME" >/dev/null
NS=addons-smoke-$NAME
IMG=docker.io/local/python-base:dev

cleanup() {
  [[ ${KEEP:-0} == 1 ]] && return
  kc delete ns "$NS" --ignore-not-found --wait=true --timeout=120s >/dev/null || true
  if [[ $NAME == kueue ]]; then
    kc delete clusterqueue addons-smoke-cq --ignore-not-found --timeout=60s >/dev/null || true
    kc delete resourceflavor addons-smoke-flavor --ignore-not-found --timeout=60s >/dev/null || true
  fi
}
trap cleanup EXIT
kc delete ns "$NS" --ignore-not-found --wait=true --timeout=120s >/dev/null
kc create ns "$NS" >/dev/null

wait_for() { # seconds description command...
  local t=$1 what=$2; shift 2
  local deadline=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out after ${t}s waiting for $what"
    sleep 1
  done
}
cond() { # kind name type -> status of that condition
  kc -n "$NS" get "$1" "$2" -o jsonpath="{.status.conditions[?(@.type==\"$3\")].status}"
}
is_true() { [[ $(cond "$@") == True ]]; }

if [[ $NAME == jobset ]]; then
  jobset() { # name command
    cat <<EOF
apiVersion: jobset.x-k8s.io/v1alpha2
kind: JobSet
metadata: {name: $1, namespace: $NS}
spec:
  replicatedJobs:
  - name: workers
    replicas: 1
    template:
      spec:
        parallelism: 2
        completions: 2
        backoffLimit: 0
        template:
          spec:
            restartPolicy: Never
            containers:
            - name: main
              image: $IMG
              imagePullPolicy: Never
              command: [python3, -c, '$2']
---
EOF
  }
  { jobset ok 'print(1)'; jobset fail 'import sys; sys.exit(1)'; } | kc apply -f - >/dev/null
  wait_for 180 "JobSet ok Completed" is_true jobset ok Completed
  wait_for 180 "JobSet fail Failed" is_true jobset fail Failed
  log "JobSet ok: Completed; JobSet fail: Failed"
  for js in ok fail; do
    echo "# jobset/$js .status"
    kc -n "$NS" get jobset "$js" -o jsonpath='{.status}' | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin), indent=2))'
  done
  echo "# pods"
  kc -n "$NS" get pods -L jobset.sigs.k8s.io/replicatedjob-name,jobset.sigs.k8s.io/job-index,batch.kubernetes.io/job-completion-index
  pod=$(kc -n "$NS" get pods -l jobset.sigs.k8s.io/jobset-name=ok,batch.kubernetes.io/job-completion-index=0 -o name)
  echo "# $pod .metadata.labels"
  kc -n "$NS" get "$pod" -o jsonpath='{.metadata.labels}' | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin), indent=2, sort_keys=True))'
  exit 0
fi

# --- kueue -------------------------------------------------------------------------------------
kc apply -f - >/dev/null <<EOF
apiVersion: kueue.x-k8s.io/v1beta1
kind: ResourceFlavor
metadata: {name: addons-smoke-flavor}
---
apiVersion: kueue.x-k8s.io/v1beta1
kind: ClusterQueue
metadata: {name: addons-smoke-cq}
spec:
  namespaceSelector: {}
  resourceGroups:
  - coveredResources: [cpu]
    flavors:
    - name: addons-smoke-flavor
      resources:
      - {name: cpu, nominalQuota: 1}
---
apiVersion: kueue.x-k8s.io/v1beta1
kind: LocalQueue
metadata: {name: lq, namespace: $NS}
spec: {clusterQueue: addons-smoke-cq}
EOF
wait_for 60 "ClusterQueue active" bash -c "[[ \$('$KUBECTL' --kubeconfig '$ADMIN_KUBECONFIG' get clusterqueue addons-smoke-cq -o jsonpath='{.status.conditions[?(@.type==\"Active\")].status}') == True ]]"
job() { # name
  cat <<EOF
apiVersion: batch/v1
kind: Job
metadata:
  name: $1
  namespace: $NS
  labels: {kueue.x-k8s.io/queue-name: lq}
spec:
  suspend: true
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: $IMG
        imagePullPolicy: Never
        command: [python3, -c, 'import time; time.sleep(${SLEEP:-12}); print(1)']
        resources: {requests: {cpu: "1"}}
---
EOF
}
job first | kc apply -f - >/dev/null
wait_for 60 "Job first admitted (unsuspended)" bash -c "[[ \$('$KUBECTL' --kubeconfig '$ADMIN_KUBECONFIG' -n $NS get job first -o jsonpath='{.spec.suspend}') == false ]]"
job second | kc apply -f - >/dev/null
sleep 5
[[ $(kc -n "$NS" get job second -o jsonpath='{.spec.suspend}') == true ]] || die "Job second was unsuspended while first holds the quota"
log "first admitted; second suspended while first runs"
echo "# while first runs: jobs, workloads"
kc -n "$NS" get jobs -o custom-columns=NAME:.metadata.name,SUSPEND:.spec.suspend,ACTIVE:.status.active,SUCCEEDED:.status.succeeded
kc -n "$NS" get workloads
echo "# job/second .status (waiting for quota)"
kc -n "$NS" get job second -o jsonpath='{.status}' | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin), indent=2))'
wl=$(kc -n "$NS" get workloads -o jsonpath='{range .items[?(@.metadata.ownerReferences[0].name=="second")]}{.metadata.name}{end}')
echo "# workload/$wl .status (waiting for quota)"
kc -n "$NS" get workload "$wl" -o jsonpath='{.status}' | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin), indent=2))'
echo "# localqueue/lq, clusterqueue/addons-smoke-cq .status while second waits"
kc -n "$NS" get localqueue lq -o jsonpath='{.status}'; echo
kc get clusterqueue addons-smoke-cq -o jsonpath='{.status.pendingWorkloads} pending, {.status.admittedWorkloads} admitted'; echo

wait_for 180 "Job first Complete" is_true job first Complete
t_first=$(kc -n "$NS" get job first -o jsonpath='{.status.completionTime}')
wait_for 120 "Job second admitted after first finished" bash -c "[[ \$('$KUBECTL' --kubeconfig '$ADMIN_KUBECONFIG' -n $NS get job second -o jsonpath='{.spec.suspend}') == false ]]"
wait_for 180 "Job second Complete" is_true job second Complete
t_second=$(kc -n "$NS" get job second -o jsonpath='{.status.startTime}')
log "first completed at $t_first; second started at $t_second, completed"
echo "# after both: workloads"
kc -n "$NS" get workloads
wl=$(kc -n "$NS" get workloads -o jsonpath='{range .items[?(@.metadata.ownerReferences[0].name=="first")]}{.metadata.name}{end}')
echo "# workload/$wl .status (finished)"
kc -n "$NS" get workload "$wl" -o jsonpath='{.status}' | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin), indent=2))'
echo "# job/second .status.conditions (admitted after first, then finished)"
kc -n "$NS" get job second -o jsonpath='{.status.conditions}' | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin), indent=2))'
echo "# events of job/second"
kc -n "$NS" get events --field-selector involvedObject.kind=Job,involvedObject.name=second --sort-by=.lastTimestamp \
  -o custom-columns=REASON:.reason,FROM:.source.component,MESSAGE:.message
