"""values.schema.json accepts the documented values and rejects bad ones."""

from __future__ import annotations

import json
from typing import Any

import helm_python as helm
import pytest
import yaml

from conftest import CHART_DIR

BAD_VALUES = {
    "replicaCount is a word": ({"replicaCount": "two"}, "/replicaCount"),
    "replicaCount is negative": ({"replicaCount": -1}, "/replicaCount"),
    "a misspelt top-level key": ({"replicas": 2}, "replicas"),
    "a misspelt nested key": ({"image": {"tags": "dev"}}, "tags"),
    "an unknown pull policy": ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    "a tag in the digest": ({"image": {"digest": "latest"}}, "/image/digest"),
    "an unknown log format": ({"logFormat": "xml"}, "/logFormat"),
    "a namespace that is no DNS label": ({"watchNamespace": "Caches_Prod"}, "/watchNamespace"),
    "a port out of range": ({"metrics": {"port": 70000}}, "/metrics/port"),
    "a bool as a string": ({"leaderElection": {"enabled": "yes"}}, "/leaderElection/enabled"),
    "a scrape interval without unit": ({"serviceMonitor": {"interval": "30"}}, "/serviceMonitor/interval"),
    "a non-string annotation": ({"podAnnotations": {"sidecar.istio.io/inject": False}}, "/podAnnotations"),
    "an env var without name": ({"extraEnv": [{"value": "x"}]}, "/extraEnv/0"),
}

GOOD_VALUES = {
    "defaults": {},
    "everything set": {
        "replicaCount": 2,
        "image": {"repository": "ferrocache", "tag": "dev", "digest": "sha256:" + "0" * 64, "pullPolicy": "Never"},
        "imagePullSecrets": [{"name": "registry"}],
        "nodeImage": "ferrocache:other",
        "leaderElection": {"enabled": True, "leaseName": "ferrocache-operator"},
        "watchNamespace": "caches",
        "logLevel": "info,ferrocache_operator=debug",
        "logFormat": "text",
        "extraEnv": [{"name": "AWS_REGION", "value": "eu-west-1"}],
        "metrics": {"port": 9090, "listenHost": "$(POD_IP)", "service": {"port": 80, "annotations": {"a": "b"}}},
        "serviceMonitor": {"enabled": True, "interval": "1m30s", "scrapeTimeout": "10s", "labels": {"release": "prom"}},
        "serviceAccount": {"create": True, "name": "operator", "annotations": {"eks.amazonaws.com/role-arn": "arn"}},
        "rbac": {"create": True},
        "podAnnotations": {"a": "b"},
        "podLabels": {"team": "caches"},
        "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "1Gi"}},
        "updateStrategy": {"type": "Recreate"},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"operator": "Exists"}],
        "affinity": {},
        "priorityClassName": "system-cluster-critical",
    },
    "a parent chart's globals": {"global": {"imageRegistry": "mirror.example"}},
}


@pytest.mark.parametrize("values,where", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_schema_rejects(chart, values, where):
    with pytest.raises(helm.HelmValuesError) as error:
        chart.validate_schema(values)
    assert where in str(error.value)
    # A render (what install and template do) refuses them too.
    with pytest.raises(helm.HelmValuesError):
        chart.render(values, name="demo", namespace="default")


@pytest.mark.parametrize("values", GOOD_VALUES.values(), ids=GOOD_VALUES.keys())
def test_schema_accepts(chart, values):
    chart.validate_schema(values)
    chart.render(values, name="demo", namespace="default")


def schema_keys(schema: dict[str, Any], prefix: str = "") -> set[str]:
    keys = set()
    for key, sub in schema.get("properties", {}).items():
        keys.add(prefix + key)
        if sub.get("additionalProperties") is False:
            keys |= schema_keys(sub, f"{prefix}{key}.")
    return keys


def value_keys(values: dict[str, Any], schema: dict[str, Any], prefix: str = "") -> set[str]:
    keys = set()
    for key, value in values.items():
        keys.add(prefix + key)
        sub = schema.get("properties", {}).get(key, {})
        if isinstance(value, dict) and sub.get("additionalProperties") is False:
            keys |= value_keys(value, sub, f"{prefix}{key}.")
    return keys


def test_schema_and_values_yaml_name_the_same_keys():
    """A key added to values.yaml needs a schema entry, and the schema holds no stale keys."""
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert schema_keys(schema) - {"global"} == value_keys(values, schema)
