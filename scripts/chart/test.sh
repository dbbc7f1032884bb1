#!/usr/bin/env bash
# Tests of the Helm chart (tests/chart/): lint, renders of every notable
# option, RBAC, values schema, CRD copies, README. No helm binary needed:
# helm-python-sdk carries Helm's Go SDK.
#
#   scripts/chart/test.sh [PYTEST ARGS...]
#
# The install test runs only with KUBECONFIG set and FERROCACHE_CHART_INSTALL=1.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/venv.sh"
chart_venv
cd "$CHART_REPO"
# No .pytest_cache in the work tree.
exec "$CHART_PYTHON" -m pytest -p no:cacheprovider tests/chart "$@"
