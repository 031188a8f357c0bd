#!/usr/bin/env bash
# Print the folder with the pinned kubectl, helm, kubeconform and server binaries (build.sh fills it):
#   export PATH=$(hack/cluster/bin-path.sh):$PATH
set -euo pipefail
# shellcheck source-path=SCRIPTDIR  # lib.sh is sourced from this script's own folder
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
echo "$BIN_DIR"
