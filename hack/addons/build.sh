#!/usr/bin/env bash
# Build (once per version, cached) the optional add-on controllers and their images:
#
#   hack/addons/build.sh [jobset] [kueue]      # default: both; logs on stderr
#
# For each: the module zip from the Go module proxy (`go mod download`), copied to a writable
# source folder ($KUBETUNE_CACHE/addons/src/<name>-<version>, with the module's own go.mod/go.sum;
# kueue's vendor/ is dropped: the zip holds only vendor/modules.txt), `go build` of the manager
# (static, CGO_ENABLED=0) into $KUBETUNE_CACHE/addons/bin/<name>-<version>/manager, and a docker
# image local/<name>-controller:<version> holding only that binary (FROM scratch, `docker import`,
# user 65532). stdout: one line per add-on: "<name> <version> <binary> <image>".
# Cold (empty Go caches, downloads included, 2 cores): jobset 94 s, kueue 201 s; cached: ~1 s.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_root

names=("$@")
((${#names[@]})) || names=(jobset kueue)
for n in "${names[@]}"; do addon_version "$n" >/dev/null; done

mkdir -p "$ADDONS_CACHE" "$ADDONS_LOGS" "$ADDONS_GOMODCACHE" "$ADDONS_GOCACHE"
GO=$(go_bin)
go_env
# one build at a time (two installs may call this concurrently)
exec 7>"$ADDONS_CACHE/.build.lock"
flock -w 1800 7 || die "another hack/addons/build.sh holds $ADDONS_CACHE/.build.lock"
docker_ready=0

build_one() {
  local name=$1 version module src bin stamp logf t0 dir sha image img_sha tmp
  version=$(addon_version "$name")
  module=$(addon_module "$name")
  src=$(addon_src "$name")
  bin=$(addon_bin "$name")
  stamp=$bin.version
  logf=$ADDONS_LOGS/build-$name.log

  # --- binary ---
  if [[ -x $bin && $(cat "$stamp" 2>/dev/null) == "$version" ]]; then
    log "$name $version: binary cached ($bin)"
  else
    t0=$SECONDS
    log "$name $version: go mod download $module@$version (log: $logf)"
    : >"$logf"
    # (not `go install pkg@version`: it reads the module's version list, which this proxy refuses: 403)
    dir=$(cd "$ADDONS_CACHE" && "$GO" mod download -json "$module@$version" 2>>"$logf" \
      | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
    [[ -n $dir && -f $dir/go.mod ]] || { tail -n 20 "$logf" >&2; die "could not download $module@$version from the Go module proxy"; }
    mkdir -p "$(dirname "$src")" || die "could not create $(dirname "$src")"
    rm -rf "$src.tmp"
    cp -r "$dir" "$src.tmp" || die "could not copy $dir to $src.tmp"
    chmod -R u+w "$src.tmp"
    rm -rf "$src.tmp/vendor"
    rm -rf "$src"
    mv "$src.tmp" "$src" || die "could not move $src.tmp to $src"
    log "$name $version: go build $(addon_pkg "$name") ($("$GO" version | cut -d' ' -f3))"
    mkdir -p "$(dirname "$bin")"
    (cd "$src" && nice -n 10 "$GO" build -trimpath -ldflags "$(addon_ldflags "$name" "$version")" \
      -o "$bin.tmp" "$(addon_pkg "$name")") >>"$logf" 2>&1 \
      || { tail -n 40 "$logf" >&2; die "go build of $name $version failed; see $logf"; }
    mv -f "$bin.tmp" "$bin"
    echo "$version" >"$stamp"
    log "$name $version: built in $((SECONDS - t0)) s"
  fi

  # --- image ---
  image=$(addon_image "$name")
  sha=$(sha256sum "$bin" | cut -d' ' -f1)
  if ((!docker_ready)); then "$HACK_CLUSTER/../docker-up.sh"; docker_ready=1; fi
  img_sha=$("$DOCKER" image inspect --format '{{index .Config.Labels "io.kubetune.binary-sha256"}}' "$image" 2>/dev/null || true)
  if [[ $img_sha == "$sha" ]]; then
    log "$image: present"
  else
    tmp=$(mktemp -d)
    cp "$bin" "$tmp/manager"
    tar -C "$tmp" --numeric-owner --owner=0 --group=0 -c manager \
      | "$DOCKER" import -c 'ENTRYPOINT ["/manager"]' -c 'USER 65532:65532' -c 'WORKDIR /' \
        -c "LABEL io.kubetune.binary-sha256=$sha" -c "LABEL io.kubetune.source=$module@$version" \
        -m "kubetune add-on: $module@$version manager (hack/addons/build.sh)" - "$image" >/dev/null \
      || { rm -rf "$tmp"; die "docker import $image failed"; }
    rm -rf "$tmp"
    log "$image: built"
  fi
  echo "$name $version $bin $image"
}

for n in "${names[@]}"; do build_one "$n"; done
