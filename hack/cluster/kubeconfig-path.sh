#!/usr/bin/env bash
# Print the admin kubeconfig of the local cluster (exists once up.sh has run):
#   export KUBECONFIG=$(hack/cluster/kubeconfig-path.sh)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR  # lib.sh is sourced from this script's own folder
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
echo "$ADMIN_KUBECONFIG"
