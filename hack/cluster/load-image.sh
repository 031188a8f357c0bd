#!/usr/bin/env bash
# Copy docker images into the local cluster's containerd (namespace k8s.io), so pods can use them
# with imagePullPolicy: Never (or IfNotPresent with a pinned tag). Nothing is pulled.
#
#   hack/cluster/load-image.sh IMAGE [IMAGE...]      # e.g. local/python-base:dev kubetune/operator:dev
#
# An image whose docker ID was already imported (and is still listed by containerd) is skipped.
# containerd names `local/x:tag` as `docker.io/local/x:tag` and `x:tag` as `docker.io/library/x:tag`.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR  # lib.sh is sourced from this script's own folder
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_root
(($# > 0)) || die "usage: $0 IMAGE [IMAGE...]"
[[ -S $CONTAINERD_SOCK ]] || die "no containerd socket at $CONTAINERD_SOCK (is the cluster up? hack/cluster/up.sh)"
DOCKER=/usr/bin/docker
CTR=(ctr --address "$CONTAINERD_SOCK" --namespace k8s.io)
MARKS=$CLUSTER_DIR/run/loaded-images
mkdir -p "$MARKS"

normalize() { # docker reference -> containerd's fully qualified name
  local ref=$1 first=${1%%/*}
  [[ $ref == */* ]] || ref=library/$ref
  if [[ $ref == "$first"/* && ( $first == *.* || $first == *:* || $first == localhost ) ]]; then :; else ref=docker.io/$ref; fi
  [[ ${ref##*/} == *:* || $ref == *@* ]] || ref=$ref:latest
  echo "$ref"
}

todo=()
for img in "$@"; do
  id=$("$DOCKER" image inspect --format '{{.Id}}' "$img" 2>/dev/null) || die "docker has no image $img (build it first)"
  full=$(normalize "$img")
  mark=$MARKS/$(echo "$full" | tr '/:@' '___')
  if [[ $(cat "$mark" 2>/dev/null) == "$id" ]] && [[ $("${CTR[@]}" images ls -q "name==$full") == "$full" ]]; then
    log "$img: already in containerd as $full"
  else
    todo+=("$img")
  fi
done
((${#todo[@]})) || exit 0

t0=$SECONDS
log "importing ${todo[*]}"
"$DOCKER" save "${todo[@]}" | "${CTR[@]}" images import - >/dev/null \
  || die "import of ${todo[*]} into $CONTAINERD_SOCK failed"
for img in "${todo[@]}"; do
  full=$(normalize "$img")
  [[ $("${CTR[@]}" images ls -q "name==$full") == "$full" ]] || die "$img is not listed by containerd as $full after import"
  "$DOCKER" image inspect --format '{{.Id}}' "$img" >"$MARKS/$(echo "$full" | tr '/:@' '___')"
  log "$img: imported as $full"
done
log "imported in $((SECONDS - t0)) s"
