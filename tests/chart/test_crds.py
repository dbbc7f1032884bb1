"""The chart's crds/ holds exact copies of the generated CRDs in crds/."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from conftest import CHART_DIR, REPO, TOP_LEVEL_CRDS

KINDS = {
    "redisclusters.ferrocache.io": ("RedisCluster", "redisclusters"),
    "backups.ferrocache.io": ("Backup", "backups"),
    "restores.ferrocache.io": ("Restore", "restores"),
}


def yaml_files(directory):
    return {path.name: path.read_bytes() for path in sorted(directory.glob("*.yaml"))}


def top_level_crds():
    crds = yaml_files(TOP_LEVEL_CRDS)
    if not crds:
        pytest.skip("crds/ holds no generated CRDs yet (crdgen output); nothing to compare with")
    return crds


def test_chart_crds_are_copies_of_the_generated_crds():
    assert yaml_files(CHART_DIR / "crds") == top_level_crds(), "stale chart CRDs: run scripts/chart/sync-crds.sh"


def test_sync_script_check_agrees():
    top_level_crds()
    result = subprocess.run([REPO / "scripts/chart/sync-crds.sh", "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_chart_carries_the_three_crds_of_the_api(chart):
    files = yaml_files(CHART_DIR / "crds")
    assert set(files) == {f"{name}.yaml" for name in KINDS}
    for file_name, text in files.items():
        (crd,) = [d for d in yaml.safe_load_all(text) if d]
        name = crd["metadata"]["name"]
        assert file_name == f"{name}.yaml"
        kind, plural = KINDS[name]
        spec = crd["spec"]
        assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
        assert spec["group"] == "ferrocache.io"
        assert spec["names"]["kind"] == kind
        assert spec["names"]["plural"] == plural
        assert spec["scope"] == "Namespaced"
        (version,) = spec["versions"]
        assert version["name"] == "v1alpha1"
        assert version["served"] is True and version["storage"] is True
        assert version["subresources"]["status"] == {}
    # Helm sees them as the chart's CRDs (installed before the templates on a first install).
    assert sorted(entry["filename"] for entry in chart.crds) == sorted(f"ferrocache/crds/{name}" for name in files)
