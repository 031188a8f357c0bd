#!/usr/bin/env bash
# Make sure a docker engine is answering on /var/run/docker.sock; install and start it if needed.
#
#   hack/docker-up.sh            # idempotent, safe to run concurrently (flock)
#
# Env: KUBETUNE_CACHE (default ~/.cache/kubetune) holds the lock, pid and log files:
#   $KUBETUNE_CACHE/docker/dockerd.{pid,log,lock}
# dockerd is left running in the background; nothing here ever stops it.
#
# BuildKit (`docker build --secret ...`): use `DOCKER_BUILDKIT=1 /usr/bin/docker build` (the
# docker.io 20.10 client, whose BuildKit is built in). The newer /usr/local/bin/docker client on
# these machines has no buildx plugin and refuses DOCKER_BUILDKIT=1.
set -euo pipefail

die() { echo "docker-up: ERROR: $*" >&2; exit 1; }
log() { echo "docker-up: $*" >&2; }

[[ $(id -u) == 0 ]] || die "must run as root (starts dockerd, installs apt packages)"

CACHE=${KUBETUNE_CACHE:-$HOME/.cache/kubetune}
STATE=$CACHE/docker
mkdir -p "$STATE"
PIDFILE=$STATE/dockerd.pid
LOGFILE=$STATE/dockerd.log
SOCK=/var/run/docker.sock
# the docker.io (20.10) client; a newer client elsewhere on PATH also works against it
DOCKER=/usr/bin/docker

answering() { [[ -S $SOCK ]] && "$DOCKER" -H "unix://$SOCK" info >/dev/null 2>&1; }

exec 9>"$STATE/dockerd.lock"
flock -w 900 9 || die "timed out waiting for $STATE/dockerd.lock"

if ! command -v dockerd >/dev/null 2>&1 || [[ ! -x $DOCKER ]]; then
  log "installing apt docker.io"
  export DEBIAN_FRONTEND=noninteractive
  # policy-rc.d would stop the package's init scripts from trying to start services; there is no init here anyway
  apt-get -o DPkg::Lock::Timeout=600 update -qq || die "apt-get update failed"
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends docker.io >/dev/null || die "apt-get install docker.io failed"
fi

if answering; then
  log "dockerd already answering on $SOCK"
  exit 0
fi

if [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  log "dockerd (pid $(cat "$PIDFILE")) running but not answering yet; waiting"
else
  # stale socket / pid from a previous dockerd that died
  rm -f "$PIDFILE" /var/run/docker.pid
  [[ -S $SOCK ]] && rm -f "$SOCK"
  log "starting dockerd (log: $LOGFILE)"
  # setsid: not tied to this shell's session, survives the caller; stdin from /dev/null
  setsid dockerd --host "unix://$SOCK" --pidfile /var/run/docker.pid \
    </dev/null >>"$LOGFILE" 2>&1 9>&- &   # 9>&-: dockerd must not inherit (and hold) our lock
  echo $! >"$PIDFILE"
fi

for _ in $(seq 1 120); do
  if answering; then
    log "dockerd up (pid $(cat "$PIDFILE"))"
    exit 0
  fi
  if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    tail -n 30 "$LOGFILE" >&2 || true
    die "dockerd exited; see $LOGFILE"
  fi
  sleep 0.5
done
tail -n 30 "$LOGFILE" >&2 || true
die "dockerd did not answer within 60 s; see $LOGFILE"
