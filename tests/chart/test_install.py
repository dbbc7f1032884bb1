"""Install the chart into a real cluster, wait for the operator to be Ready, and
check it reconciles a RedisCluster into a serving node.

Runs only with KUBECONFIG set and FERROCACHE_CHART_INSTALL=1, so it never
touches a developer's current context by accident:

    eval "$(scripts/testbed/up.sh)"          # or a kind cluster with the image loaded
    cargo build -p ferrocache-operator -p ferrocache-node
    FERROCACHE_CHART_INSTALL=1 scripts/chart/test.sh -k install

On the local test bed the image `ferrocache` maps to the workspace's debug
binaries, so the pod runs the real operator. The release watches only its own
fresh namespace, so it never competes with an operator already in the cluster.
CRDs are installed from the chart when the cluster has none (Helm leaves them
in place on uninstall).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import helm_python as helm
import pytest

from conftest import CHART_DIR, parse_manifests

pytestmark = pytest.mark.skipif(
    not os.environ.get("KUBECONFIG") or os.environ.get("FERROCACHE_CHART_INSTALL") != "1",
    reason="needs a cluster: set KUBECONFIG and FERROCACHE_CHART_INSTALL=1",
)

IMAGE_REPOSITORY = os.environ.get("FERROCACHE_CHART_IMAGE_REPOSITORY", "ferrocache")
IMAGE_TAG = os.environ.get("FERROCACHE_CHART_IMAGE_TAG", "dev")
READY_TIMEOUT_SECONDS = int(os.environ.get("FERROCACHE_CHART_READY_TIMEOUT", "180"))


def kubectl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["kubectl", *args], capture_output=True, text=True, check=check, timeout=120)


def operator_pods(namespace: str, release: str) -> list[dict]:
    selector = f"app.kubernetes.io/instance={release},app.kubernetes.io/component=operator"
    result = kubectl("get", "pods", "--namespace", namespace, "--selector", selector, "--output", "json")
    return json.loads(result.stdout)["items"]


def is_ready(pod: dict) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def diagnostics(namespace: str, release: str) -> str:
    """What to look at when the pod never got Ready: pod status, events, logs."""
    parts = [kubectl("get", "pods,events", "--namespace", namespace, "--output", "wide", check=False).stdout]
    for pod in operator_pods(namespace, release):
        name = pod["metadata"]["name"]
        parts.append(json.dumps(pod.get("status", {}), indent=1))
        logs = kubectl("logs", "--namespace", namespace, name, "--all-containers", "--tail", "50", check=False)
        parts.append(logs.stdout or logs.stderr)
        # The local test bed has no kubelet API (no kubectl logs); its stand-in keeps logs on disk.
        testbed_log = Path(os.environ.get("FERROCACHE_TESTBED_DIR", "/nonexistent"), "kubelet/pods", f"{namespace}_{name}", "operator.log")
        if testbed_log.exists():
            parts.append(testbed_log.read_text()[-5000:])
    return "\n".join(parts)


@pytest.fixture
def namespace():
    name = f"ferrocache-chart-{uuid.uuid4().hex[:8]}"
    yield name
    kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture(autouse=True)
def needs_kubectl():
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")


@pytest.mark.parametrize(
    "values",
    [{}, {"serviceMonitor": {"enabled": True}}, {"leaderElection": {"enabled": False}, "replicaCount": 2}],
    ids=["defaults", "serviceMonitor", "noLeaderElection"],
)
def test_api_server_accepts_the_rendered_objects(chart, namespace, values):
    """A server-side dry run validates every object against the cluster's own schemas."""
    kubectl("create", "namespace", namespace)
    values = {**values, "watchNamespace": namespace}
    rendered = parse_manifests(chart.render(values, name="chart-test", namespace=namespace, is_install=True))
    objects = rendered.objects
    if values.get("serviceMonitor") and kubectl("get", "crd", "servicemonitors.monitoring.coreos.com", check=False).returncode != 0:
        objects = [o for o in objects if o["kind"] != "ServiceMonitor"]
    manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    result = subprocess.run(
        ["kubectl", "apply", "--dry-run=server", "--namespace", namespace, "--filename", "-"],
        input=manifest, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr


REDIS_CLUSTER = """
apiVersion: ferrocache.io/v1alpha1
kind: RedisCluster
metadata:
  name: cache
spec:
  memoryLimit: 256Mi
"""


def test_chart_installs_and_the_operator_reconciles_a_redis_cluster(namespace):
    release = "chart-test"
    values = {
        "image": {"repository": IMAGE_REPOSITORY, "tag": IMAGE_TAG, "pullPolicy": "IfNotPresent"},
        "watchNamespace": namespace,
        "logFormat": "text",
        # Pods of the local test bed share the host's network namespace.
        "metrics": {"listenHost": "$(POD_IP)"},
    }
    with helm.Config(namespace=namespace) as config:
        config.check_reachable()
        try:
            release_info = config.install(
                CHART_DIR, release, values, namespace=namespace, create_namespace=True, timeout=60
            )
            assert "Deployment" in release_info["manifest"]
            deadline = time.monotonic() + READY_TIMEOUT_SECONDS
            pods: list[dict] = []
            while time.monotonic() < deadline:
                pods = operator_pods(namespace, release)
                if pods and all(is_ready(pod) for pod in pods):
                    break
                time.sleep(2)
            else:
                pytest.fail(f"the operator pod was not Ready within {READY_TIMEOUT_SECONDS}s\n{diagnostics(namespace, release)}")
            assert len(pods) == 1
            container = pods[0]["spec"]["containers"][0]
            assert container["image"] == f"{IMAGE_REPOSITORY}:{IMAGE_TAG}"

            # The installed operator turns a RedisCluster into a serving node.
            subprocess.run(
                ["kubectl", "apply", "--namespace", namespace, "--filename", "-"],
                input=REDIS_CLUSTER, capture_output=True, text=True, timeout=60, check=True,
            )
            waited = kubectl(
                "wait", "--namespace", namespace, "--for=condition=Available", "rediscluster/cache",
                f"--timeout={READY_TIMEOUT_SECONDS}s", check=False,
            )
            assert waited.returncode == 0, f"{waited.stderr}\n{diagnostics(namespace, release)}"
            cluster = json.loads(kubectl("get", "rediscluster", "cache", "--namespace", namespace, "--output", "json").stdout)
            progressing = [c for c in cluster["status"]["conditions"] if c["type"] == "Progressing"]
            assert progressing and progressing[0]["reason"] == "Available"
            assert cluster["status"]["readyNodes"] == "1/1"
            node_image = kubectl("get", "statefulset", "cache", "--namespace", namespace,
                                 "--output", "jsonpath={.spec.template.spec.containers[0].image}").stdout
            assert node_image == f"{IMAGE_REPOSITORY}:{IMAGE_TAG}", "nodes run the operator's own image"
            kubectl("delete", "rediscluster", "cache", "--namespace", namespace, "--timeout=60s")
        finally:
            config.uninstall(release, ignore_not_found=True, timeout=60)
