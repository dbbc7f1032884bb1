"""Shared helpers of the chart tests: render the chart offline with
helm-python-sdk (Helm's Go SDK, no helm binary) and look objects up."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import helm_python as helm
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "charts" / "ferrocache"
TOP_LEVEL_CRDS = REPO / "crds"

# A release name without the chart name in it, so names are "<release>-ferrocache".
RELEASE = "demo"
NAMESPACE = "ferrocache-system"
FULLNAME = f"{RELEASE}-ferrocache"

RECOMMENDED_LABELS = {
    "app.kubernetes.io/name": "ferrocache",
    "app.kubernetes.io/instance": RELEASE,
    "app.kubernetes.io/component": "operator",
    "app.kubernetes.io/part-of": "ferrocache",
    "app.kubernetes.io/managed-by": "Helm",
}

CLUSTER_SCOPED_KINDS = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "Namespace"}


@dataclass
class Rendered:
    """The objects one render produced, plus NOTES.txt."""

    objects: list[dict[str, Any]]
    notes: str

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [o for o in self.all(kind) if name is None or o["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name or ''}, found {[o['metadata']['name'] for o in found]}"
        return found[0]

    def has(self, kind: str, name: str | None = None) -> bool:
        return any(name is None or o["metadata"]["name"] == name for o in self.all(kind))

    def identities(self) -> set[tuple[str, str, str | None]]:
        return {(o["kind"], o["metadata"]["name"], o["metadata"].get("namespace")) for o in self.objects}

    # The operator's Deployment, its pod spec and its one container.
    @property
    def deployment(self) -> dict[str, Any]:
        return self.one("Deployment")

    @property
    def pod(self) -> dict[str, Any]:
        return self.deployment["spec"]["template"]["spec"]

    @property
    def container(self) -> dict[str, Any]:
        (container,) = self.pod["containers"]
        return container

    @property
    def env(self) -> dict[str, Any]:
        """The container's env by name: a plain value, or the valueFrom mapping."""
        return {e["name"]: e["value"] if "value" in e else e.get("valueFrom") for e in self.container.get("env", [])}


@pytest.fixture(scope="session")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART_DIR) as loaded:
        yield loaded


def parse_manifests(rendered: dict[str, str]) -> Rendered:
    objects: list[dict[str, Any]] = []
    notes = ""
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        for document in yaml.safe_load_all(text):
            if document:
                objects.append(document)
    return Rendered(objects, notes)


@pytest.fixture(scope="session")
def render(chart: helm.Chart):
    """render(values) -> Rendered: the chart rendered offline as release `demo`
    in namespace `ferrocache-system`, as a first install."""

    def render_chart(values: dict[str, Any] | None = None, *, name: str = RELEASE, namespace: str = NAMESPACE) -> Rendered:
        return parse_manifests(chart.render(values or {}, name=name, namespace=namespace, is_install=True))

    return render_chart


def rule_triples(rules: list[dict[str, Any]]) -> set[tuple[str, str, str, str | None]]:
    """RBAC rules flattened to (apiGroup, resource, verb, resourceName-or-None)."""
    triples = set()
    for rule in rules:
        names = rule.get("resourceNames") or [None]
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                for verb in rule.get("verbs", []):
                    for name in names:
                        triples.add((group, resource, verb, name))
    return triples
