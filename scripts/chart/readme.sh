#!/usr/bin/env bash
# Regenerate the values table of charts/ferrocache/README.md from the
# comments in values.yaml; with --check, fail when it is stale instead.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/venv.sh"
chart_venv
exec "$CHART_PYTHON" "$CHART_REPO/scripts/chart/values_doc.py" "$@"
