#!/usr/bin/env bash
# Build (once; skipped when docker already has them) the two images nothing can pull here:
#   local/pause:3.9           static pause.c, FROM scratch   (the pod sandbox image)
#   local/python-base:dev     debootstrap --variant=minbase bookworm + python3, python3-venv,
#                             ca-certificates; the base for the project's Python images
# The debootstrap rootfs tarball is cached ($KUBETUNE_CACHE/images/), so a fresh docker daemon
# re-imports it in seconds. The Debian mirror is the one apt on this machine is configured with.
#
#   hack/cluster/images.sh [--rebuild] [--pause-only]
#     --rebuild     drop the cached tarball and images first
#     --pause-only  only the pause image (what up.sh needs)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR  # lib.sh is sourced from this script's own folder
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_root

REBUILD=0 PAUSE_ONLY=0
for arg in "$@"; do
  case $arg in
    --rebuild) REBUILD=1 ;;
    --pause-only) PAUSE_ONLY=1 ;;
    *) die "unknown argument $arg" ;;
  esac
done

"$HACK_CLUSTER/../docker-up.sh"
DOCKER=/usr/bin/docker
IMG_CACHE=$KUBETUNE_CACHE/images
LOGS=$KUBETUNE_CACHE/logs
mkdir -p "$IMG_CACHE" "$LOGS"
apt_ensure debootstrap debian-archive-keyring gcc libc6-dev

have_image() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

# --- pause ----------------------------------------------------------------------------------------
if ((REBUILD)); then "$DOCKER" rmi -f "$PAUSE_IMAGE" >/dev/null 2>&1 || true; fi
if have_image "$PAUSE_IMAGE"; then
  log "$PAUSE_IMAGE: present"
else
  tmp=$(mktemp -d)
  gcc -Os -static -o "$tmp/pause" "$HACK_CLUSTER/pause.c" || die "gcc -static pause.c failed (libc6-dev?)"
  strip "$tmp/pause" 2>/dev/null || true
  tar -C "$tmp" --numeric-owner --owner=0 --group=0 -c pause \
    | "$DOCKER" import -c 'ENTRYPOINT ["/pause"]' -m "kubetune pause (hack/cluster/pause.c)" - "$PAUSE_IMAGE" >/dev/null \
    || die "docker import $PAUSE_IMAGE failed"
  rm -rf "$tmp"
  log "$PAUSE_IMAGE: built"
fi

if ((PAUSE_ONLY)); then exit 0; fi

# --- python base ----------------------------------------------------------------------------------
# the first Debian mirror apt is configured with (deb822 .sources or one-line .list); only that is reachable
debian_mirror() {
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    # stanza with Suites: bookworm (not -security/-updates) and a URI
    uri=$(awk 'BEGIN{RS=""} /Suites:[^\n]*bookworm( |$|\n)/ && /Types:[^\n]*deb( |$|\n)/ {
             if (match($0, /URIs:[ \t]*[^ \t\n]+/)) { s=substr($0,RSTART,RLENGTH); sub(/URIs:[ \t]*/,"",s); print s; exit } }' "$f")
    [[ -n $uri ]] && { echo "$uri"; return; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f $f ]] || continue
    uri=$(awk '$1=="deb" { i=2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } if ($(i+1)=="bookworm") { print $i; exit } }' "$f")
    [[ -n $uri ]] && { echo "$uri"; return; }
  done
  echo http://deb.debian.org/debian
}

ROOTFS_TAR=$IMG_CACHE/python-base-bookworm.tar
if ((REBUILD)); then
  "$DOCKER" rmi -f "$PYTHON_BASE_IMAGE" >/dev/null 2>&1 || true
  rm -f "$ROOTFS_TAR"
fi
if have_image "$PYTHON_BASE_IMAGE"; then
  log "$PYTHON_BASE_IMAGE: present"
else
  if [[ ! -s $ROOTFS_TAR ]]; then
    mirror=$(debian_mirror)
    rootfs=$IMG_CACHE/rootfs.tmp
    rm -rf "$rootfs"
    log "$PYTHON_BASE_IMAGE: debootstrap bookworm from $mirror (~2.5 min; log: $LOGS/debootstrap.log)"
    t0=$SECONDS
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
      bookworm "$rootfs" "$mirror" >"$LOGS/debootstrap.log" 2>&1 \
      || { tail -n 30 "$LOGS/debootstrap.log" >&2; rm -rf "$rootfs"; die "debootstrap failed; see $LOGS/debootstrap.log"; }
    # smaller image: no downloaded .debs, apt lists, docs
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
      "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
    # debootstrap copies the host's resolv.conf/hostname; containers get their own
    rm -f "$rootfs"/etc/hostname && : >"$rootfs"/etc/resolv.conf
    tar -C "$rootfs" --numeric-owner -cf "$ROOTFS_TAR.tmp" . && mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
    rm -rf "$rootfs"
    log "$PYTHON_BASE_IMAGE: rootfs in $((SECONDS - t0)) s -> $ROOTFS_TAR"
  fi
  "$DOCKER" import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' \
    -c 'CMD ["python3"]' \
    -m "kubetune python base: debootstrap minbase bookworm + python3" \
    "$ROOTFS_TAR" "$PYTHON_BASE_IMAGE" >/dev/null || die "docker import $PYTHON_BASE_IMAGE failed"
  log "$PYTHON_BASE_IMAGE: imported"
fi
"$DOCKER" image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E "^($PAUSE_IMAGE|$PYTHON_BASE_IMAGE) " >&2
