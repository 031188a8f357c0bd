#!/usr/bin/env bash
# Install an optional add-on controller on the running local cluster (hack/cluster/up.sh), and
# wait until it serves: CRDs, RBAC, its webhooks and its Deployment, exactly as its release's
# config/default kustomization renders them (`kubectl kustomize`), with a small overlay for the
# offline cluster. Idempotent: a second run re-applies the same objects (server-side apply) and
# leaves the running pod alone.
#
#   hack/addons/install.sh jobset|kueue
#
# The controller runs as a pod (image local/<name>-controller:<version>, built by build.sh and
# imported into the cluster's containerd; imagePullPolicy Never). Its webhooks stay on, with the
# release's own internal cert management: the controller creates a self-signed CA and a serving
# cert for <name>-webhook-service.<name>-system.svc, stores them in the Secret
# <name>-webhook-server-cert (mounted into the pod) and patches the caBundle of its webhook
# configurations. The API server reaches the webhook Service through its ClusterIP (kube-proxy).
#
# Overlay (hack/addons/<name>/*.yaml, plus what this script generates):
#   both:   image, imagePullPolicy Never, no kube-rbac-proxy sidecar (unpullable image), requests
#           cut to 20m CPU / 64Mi (2-core node shared with the tests' pods)
#   kueue:  integrations batch/job (+ jobset.x-k8s.io/jobset when the JobSet CRD is installed, so
#           install jobset first to queue JobSets); manageJobsWithoutQueueName false; webhooks of
#           the integrations not enabled (pod, kubeflow, ray, mpi) dropped; the Job (and JobSet)
#           webhooks restricted to objects labelled kueue.x-k8s.io/queue-name, so no other Job or
#           pod on the shared cluster goes through Kueue (upstream: every Job and every pod outside
#           kube-system/kueue-system, failurePolicy Fail).
# Rendered manifests: $KUBETUNE_CACHE/addons/manifests/<name>-<version>.yaml (uninstall.sh uses them).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_root
(($# == 1)) || die "usage: $0 jobset|kueue"
NAME=$1
VERSION=$(addon_version "$NAME")
NS=$(addon_namespace "$NAME")
DEPLOY=$NAME-controller-manager
TIMEOUT=${ADDON_TIMEOUT:-240}
SECONDS=0

kc get --raw /readyz >/dev/null 2>&1 || die "the local cluster is not up (hack/cluster/up.sh)"
mkdir -p "$ADDONS_CACHE"
# one install of this add-on at a time (tests may call it while someone else does)
exec 6>"$ADDONS_CACHE/.install-$NAME.lock"
flock -w 600 6 || die "another hack/addons/install.sh $NAME holds $ADDONS_CACHE/.install-$NAME.lock"

# --- image into containerd ---------------------------------------------------------------------
"$HACK_ADDONS/build.sh" "$NAME" >/dev/null
IMAGE=$(addon_image "$NAME")
"$HACK_CLUSTER/load-image.sh" "$IMAGE"
FULL_IMAGE=docker.io/$IMAGE

# --- render: the release's config/default + overlay --------------------------------------------
SRC=$(addon_src "$NAME")
[[ -d $SRC/config/default ]] || die "no $SRC/config/default (hack/addons/build.sh $NAME)"
# (beside the source folder, not in it: build.sh replaces that folder when it rebuilds)
OVL=$SRC-overlay
rm -rf "$OVL" && mkdir -p "$OVL"
sed "s#image: IMAGE#image: $FULL_IMAGE#" "$HACK_ADDONS/$NAME/manager-patch.yaml" >"$OVL/manager-patch.yaml"
patches=(manager-patch.yaml)

if [[ $NAME == kueue ]]; then
  frameworks=('"batch/job"')
  drop=(pod mxjob paddlejob pytorchjob tfjob xgboostjob mpijob raycluster rayjob)
  queued=(job)
  if kc get crd jobsets.jobset.x-k8s.io >/dev/null 2>&1; then
    frameworks+=('"jobset.x-k8s.io/jobset"') queued+=(jobset)
  else
    log "no JobSet CRD: the jobset.x-k8s.io/jobset integration stays off (install jobset first to queue JobSets)"
    drop+=(jobset)
  fi
  # the upstream config (config/components/manager/controller_manager_config.yaml) with the frameworks above
  cat >"$OVL/config-patch.yaml" <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: kueue-manager-config
  namespace: kueue-system
data:
  controller_manager_config.yaml: |
    apiVersion: config.kueue.x-k8s.io/v1beta1
    kind: Configuration
    health:
      healthProbeBindAddress: :8081
    metrics:
      bindAddress: :8080
    webhook:
      port: 9443
    leaderElection:
      leaderElect: true
      resourceName: c1f6bfd2.kueue.x-k8s.io
    controller:
      groupKindConcurrency:
        Job.batch: 5
        Pod: 5
        Workload.kueue.x-k8s.io: 5
        LocalQueue.kueue.x-k8s.io: 1
        ClusterQueue.kueue.x-k8s.io: 1
        ResourceFlavor.kueue.x-k8s.io: 1
    clientConnection:
      qps: 50
      burst: 100
    manageJobsWithoutQueueName: false
    internalCertManagement:
      enable: true
    integrations:
      frameworks: [$(IFS=,; echo "${frameworks[*]}")]
EOF
  for kind in Mutating Validating; do
    p=${kind:0:1}; p=${p,}
    {
      echo "apiVersion: admissionregistration.k8s.io/v1"
      echo "kind: ${kind}WebhookConfiguration"
      echo "metadata:"
      echo "  name: kueue-${kind,,}-webhook-configuration"
      echo "webhooks:"
      # shellcheck disable=SC2016  # $patch is kustomize's, not a shell variable
      for w in "${drop[@]}"; do printf -- '- name: %s%s.kb.io\n  $patch: delete\n' "$p" "$w"; done
      for w in "${queued[@]}"; do
        printf -- '- name: %s%s.kb.io\n  objectSelector:\n    matchExpressions:\n' "$p" "$w"
        printf -- '    - {key: kueue.x-k8s.io/queue-name, operator: Exists}\n'
      done
    } >"$OVL/webhook-${kind,,}-patch.yaml"
    patches+=("webhook-${kind,,}-patch.yaml")
  done
  patches+=(config-patch.yaml)
fi
{
  echo "# generated by hack/addons/install.sh $NAME"
  echo "apiVersion: kustomize.config.k8s.io/v1beta1"
  echo "kind: Kustomization"
  echo "resources: [../$(basename "$SRC")/config/default]"
  echo "patches:"
  for p in "${patches[@]}"; do echo "- path: $p"; done
} >"$OVL/kustomization.yaml"

MANIFESTS=$ADDONS_CACHE/manifests/$NAME-$VERSION.yaml
mkdir -p "$(dirname "$MANIFESTS")"
kc kustomize "$OVL" >"$MANIFESTS.tmp" 2>"$MANIFESTS.err" \
  || { cat "$MANIFESTS.err" >&2; die "kubectl kustomize $OVL failed"; }
mv "$MANIFESTS.tmp" "$MANIFESTS"
grep -E '^ +image: ' "$MANIFESTS" | grep -v -F "image: $FULL_IMAGE" && die "$MANIFESTS names an image other than $FULL_IMAGE"

# --- apply ----------------------------------------------------------------------------------------
log "$NAME $VERSION: server-side apply of $MANIFESTS ($(grep -c '^kind:' "$MANIFESTS") objects)"
# server-side: the JobSet/Kueue CRDs are too big for client-side apply's last-applied annotation;
# the caBundle and the Secret's data stay owned by the controller's cert rotator
kc apply --server-side --force-conflicts --field-manager=kubetune-addons -f "$MANIFESTS" >/dev/null \
  || die "kubectl apply -f $MANIFESTS failed"
mapfile -t crds < <(sed -n 's/^  name: \(.*\.x-k8s\.io\)$/crd\/\1/p' "$MANIFESTS")
kc wait --for=condition=Established --timeout=60s "${crds[@]}" >/dev/null \
  || die "the $NAME CRDs are not Established"

log "$NAME $VERSION: waiting for deployment $NS/$DEPLOY (cert rotation + secret volume sync can take a minute)"
if ! kc -n "$NS" rollout status "deploy/$DEPLOY" --timeout="${TIMEOUT}s" >/dev/null; then
  kc -n "$NS" get pods -o wide >&2 || true
  kc -n "$NS" logs "deploy/$DEPLOY" --tail=30 >&2 || true
  die "deployment $NS/$DEPLOY not ready after ${TIMEOUT}s"
fi

# --- the webhooks answer (a server-side dry run goes through them) --------------------------------
probe() {
  case $NAME in
    jobset) kc create --dry-run=server -o name -f - <<'EOF'
apiVersion: jobset.x-k8s.io/v1alpha2
kind: JobSet
metadata: {name: kubetune-addons-probe, namespace: default}
spec:
  replicatedJobs:
  - name: w
    replicas: 1
    template:
      spec:
        template:
          spec:
            restartPolicy: Never
            containers: [{name: c, image: docker.io/local/python-base:dev}]
EOF
    ;;
    kueue) kc create --dry-run=server -o name -f - <<'EOF'
apiVersion: kueue.x-k8s.io/v1beta1
kind: ResourceFlavor
metadata: {name: kubetune-addons-probe}
EOF
    ;;
  esac
}
deadline=$((SECONDS + 120))
until out=$(probe 2>&1); do
  ((SECONDS < deadline)) || die "the $NAME webhooks do not answer: $out"
  sleep 2
done
log "$NAME $VERSION: ready in $((SECONDS)) s (webhooks answer: $out)"
kc -n "$NS" get pods -o wide >&2
echo "$NAME $VERSION $NS/$DEPLOY $FULL_IMAGE"
