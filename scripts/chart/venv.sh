# shellcheck shell=bash
# Source it, do not run it: sets CHART_PYTHON to the python of a venv holding
# the pinned tools of tests/chart/requirements.txt, creating the venv once.
# The venv lives outside the clone, keyed by the python version and a hash of
# the requirements, so a change of pins gets a fresh venv:
#   ~/.cache/ferrocache/venv-chart/<hash>/

CHART_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CHART_REQUIREMENTS="$CHART_REPO/tests/chart/requirements.txt"

chart_venv() {
    local python="${PYTHON:-python3}"
    local version key root
    version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    key="$( { echo "python $version"; cat "$CHART_REQUIREMENTS"; } | sha256sum | cut -c1-16)"
    root="${FERROCACHE_CACHE_DIR:-$HOME/.cache/ferrocache}/venv-chart/$key"
    if [[ ! -f "$root/.complete" ]]; then
        echo "[chart] creating venv $root (python $version)" >&2
        rm -rf "$root"
        "$python" -m venv "$root" >&2
        "$root/bin/pip" install --quiet --disable-pip-version-check -r "$CHART_REQUIREMENTS" >&2
        touch "$root/.complete"
    fi
    # shellcheck disable=SC2034 # read by the scripts that source this file
    CHART_PYTHON="$root/bin/python"
}
