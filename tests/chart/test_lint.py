"""`helm lint` (through helm-python-sdk) finds nothing to warn about."""

from __future__ import annotations

import helm_python as helm
import pytest

from conftest import CHART_DIR, NAMESPACE

WARNING = 2

NOTABLE_VALUES = {
    "defaults": {},
    "watchNamespace": {"watchNamespace": "caches"},
    "serviceMonitor": {"serviceMonitor": {"enabled": True}},
    "noLeaderElection": {"leaderElection": {"enabled": False}},
    "twoReplicas": {"replicaCount": 2},
    "noRbac": {"rbac": {"create": False}, "serviceAccount": {"create": False, "name": "existing"}},
    "localImage": {"image": {"repository": "ferrocache", "tag": "dev", "pullPolicy": "Never"}},
}


def findings(report: dict) -> list[dict]:
    """Lint messages of warning severity or worse (info, like "icon is recommended", is fine)."""
    return [m for m in report["messages"] if m["severity"] >= WARNING]


@pytest.mark.parametrize("values", NOTABLE_VALUES.values(), ids=NOTABLE_VALUES.keys())
def test_chart_lints_clean_in_strict_mode(values):
    report = helm.lint(CHART_DIR, values, strict=True, namespace=NAMESPACE)
    assert report["total_charts_linted"] == 1
    assert report["errors"] == []
    assert findings(report) == []


@pytest.mark.parametrize("kube_version", ["v1.20.2", "v1.33.0"])
def test_chart_lints_clean_for_the_oldest_and_a_recent_kubernetes(kube_version):
    """1.20 is the local test bed's API server (and the chart's kubeVersion floor)."""
    report = helm.lint(CHART_DIR, strict=True, namespace=NAMESPACE, kube_version=kube_version)
    assert report["errors"] == []
    assert findings(report) == []


def test_lint_reports_a_schema_violation():
    """The lint really validates values: a bad one is an error, not a pass."""
    report = helm.lint(CHART_DIR, {"replicaCount": "two"}, namespace=NAMESPACE)
    assert report["errors"]
    assert any("/replicaCount" in message for message in report["errors"])
