"""Renders of the chart, with its defaults and with each notable option."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from conftest import CLUSTER_SCOPED_KINDS, FULLNAME, NAMESPACE, RECOMMENDED_LABELS, RELEASE

SNAPSHOT = Path(__file__).parent / "snapshots" / "defaults.yaml"


def chart_app_version() -> str:
    return yaml.safe_load((Path(__file__).resolve().parents[2] / "charts/ferrocache/Chart.yaml").read_text())["appVersion"]


# --- defaults -------------------------------------------------------------------


def test_defaults_render_the_operator_and_nothing_else(render):
    rendered = render()
    assert rendered.identities() == {
        ("ServiceAccount", FULLNAME, NAMESPACE),
        ("ClusterRole", FULLNAME, None),
        ("ClusterRoleBinding", FULLNAME, None),
        ("Role", f"{FULLNAME}-leader-election", NAMESPACE),
        ("RoleBinding", f"{FULLNAME}-leader-election", NAMESPACE),
        ("Service", f"{FULLNAME}-metrics", NAMESPACE),
        ("Deployment", FULLNAME, NAMESPACE),
    }


@pytest.mark.parametrize(
    "values",
    [{}, {"watchNamespace": "caches"}, {"serviceMonitor": {"enabled": True}}, {"replicaCount": 2}],
    ids=["defaults", "watchNamespace", "serviceMonitor", "replicas"],
)
def test_every_object_has_the_recommended_labels(render, values):
    for obj in render(values).objects:
        labels = obj["metadata"]["labels"]
        for key, value in RECOMMENDED_LABELS.items():
            assert labels.get(key) == value, (obj["kind"], key)
        assert labels["app.kubernetes.io/version"] == chart_app_version()
        assert labels["helm.sh/chart"] == "ferrocache-0.1.0"


def test_namespaced_objects_live_in_the_release_namespace(render):
    for obj in render().objects:
        if obj["kind"] in CLUSTER_SCOPED_KINDS:
            assert "namespace" not in obj["metadata"], obj["kind"]
        else:
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["kind"]


def test_deployment_runs_one_operator_pod_from_the_image_entrypoint(render):
    rendered = render()
    assert rendered.deployment["spec"]["replicas"] == 1
    container = rendered.container
    assert container["image"] == f"ghcr.io/ferrocache/ferrocache:{chart_app_version()}"
    assert container["imagePullPolicy"] == "IfNotPresent"
    # The image's entrypoint is /usr/local/bin/ferrocache-operator; node pods choose the node by command.
    assert "command" not in container
    assert "args" not in container


def test_selectors_match_the_operator_pods_only(render):
    rendered = render()
    pod_labels = rendered.deployment["spec"]["template"]["metadata"]["labels"]
    selector = rendered.deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    # The component label keeps node pods with the same name/instance labels out.
    assert selector["app.kubernetes.io/component"] == "operator"
    assert rendered.one("Service")["spec"]["selector"] == selector


def test_operator_environment_by_default(render):
    rendered = render()
    env = rendered.env
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["POD_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert env["FERROCACHE_METRICS_ADDRESS"] == "0.0.0.0:8080"
    assert env["FERROCACHE_LEADER_ELECTION"] == "true"
    assert env["FERROCACHE_LEASE_NAME"] == FULLNAME
    assert env["RUST_LOG"] == "info"
    assert env["FERROCACHE_LOG_FORMAT"] == "json"
    assert "FERROCACHE_WATCH_NAMESPACE" not in env


@pytest.mark.parametrize(
    "values",
    [{}, {"leaderElection": {"enabled": False}}, {"watchNamespace": "caches", "replicaCount": 2}],
)
def test_env_values_are_strings(render, values):
    """The API server rejects an env value that is not a string (a YAML bool, say)."""
    for entry in render(values).container["env"]:
        assert "value" in entry or "valueFrom" in entry, entry
        if "value" in entry:
            assert isinstance(entry["value"], str), entry


def test_probes_use_healthz_and_readyz_on_the_metrics_port(render):
    container = render().container
    assert container["ports"] == [{"name": "http-metrics", "containerPort": 8080, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http-metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http-metrics"}


def test_metrics_port_moves_the_listener_the_container_port_and_the_probes_together(render):
    rendered = render({"metrics": {"port": 9090, "service": {"port": 80}}})
    assert rendered.env["FERROCACHE_METRICS_ADDRESS"] == "0.0.0.0:9090"
    assert rendered.container["ports"][0]["containerPort"] == 9090
    assert rendered.container["readinessProbe"]["httpGet"]["port"] == "http-metrics"
    assert rendered.one("Service")["spec"]["ports"] == [
        {"name": "http-metrics", "port": 80, "targetPort": "http-metrics", "protocol": "TCP"}
    ]


def test_metrics_listen_host_can_be_the_pod_ip(render):
    """On hosts where pods share a network namespace, bind to $(POD_IP); the
    kubelet expands $(VAR) only from variables defined earlier in the list."""
    rendered = render({"metrics": {"listenHost": "$(POD_IP)"}})
    names = [e["name"] for e in rendered.container["env"]]
    assert rendered.env["FERROCACHE_METRICS_ADDRESS"] == "$(POD_IP):8080"
    assert names.index("POD_IP") < names.index("FERROCACHE_METRICS_ADDRESS")


def test_pods_run_as_non_root_with_a_read_only_root_and_no_capabilities(render):
    rendered = render()
    pod_security = rendered.pod["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert pod_security["runAsUser"] == 65532
    assert pod_security["runAsGroup"] == 65532
    assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
    security = rendered.container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    # The operator needs no volume (the service-account token is mounted by Kubernetes).
    assert "volumes" not in rendered.pod
    assert "volumeMounts" not in rendered.container
    assert rendered.pod.get("hostNetwork") is not True


def test_resources_have_requests_and_a_memory_limit(render):
    resources = render().container["resources"]
    assert set(resources["requests"]) == {"cpu", "memory"}
    assert "memory" in resources["limits"]


# --- the node image -------------------------------------------------------------


def test_node_image_defaults_to_the_operator_image(render):
    rendered = render()
    assert rendered.env["FERROCACHE_NODE_IMAGE"] == rendered.container["image"]


def test_node_image_follows_a_locally_built_operator_image(render):
    rendered = render({"image": {"repository": "ferrocache", "tag": "dev", "pullPolicy": "Never"}})
    assert rendered.container["image"] == "ferrocache:dev"
    assert rendered.container["imagePullPolicy"] == "Never"
    assert rendered.env["FERROCACHE_NODE_IMAGE"] == "ferrocache:dev"


def test_image_digest_pins_both_operator_and_nodes(render):
    digest = "sha256:" + "ab" * 32
    rendered = render({"image": {"tag": "ignored", "digest": digest}})
    assert rendered.container["image"] == f"ghcr.io/ferrocache/ferrocache@{digest}"
    assert rendered.env["FERROCACHE_NODE_IMAGE"] == rendered.container["image"]


def test_node_image_override_changes_only_the_nodes(render):
    rendered = render({"nodeImage": "registry.example/ferrocache-node:1.2.3"})
    assert rendered.env["FERROCACHE_NODE_IMAGE"] == "registry.example/ferrocache-node:1.2.3"
    assert rendered.container["image"] == f"ghcr.io/ferrocache/ferrocache:{chart_app_version()}"


# --- options --------------------------------------------------------------------


def test_watch_namespace_is_passed_to_the_operator(render):
    assert render({"watchNamespace": "caches"}).env["FERROCACHE_WATCH_NAMESPACE"] == "caches"


def test_leader_election_off_sets_the_flag_and_drops_the_lease_name(render):
    env = render({"leaderElection": {"enabled": False}}).env
    assert env["FERROCACHE_LEADER_ELECTION"] == "false"
    assert "FERROCACHE_LEASE_NAME" not in env


def test_two_replicas_keep_leader_election(render):
    rendered = render({"replicaCount": 2})
    assert rendered.deployment["spec"]["replicas"] == 2
    assert rendered.env["FERROCACHE_LEADER_ELECTION"] == "true"
    assert rendered.has("Role", f"{FULLNAME}-leader-election")


def test_service_monitor_scrapes_the_metrics_service(render):
    rendered = render({"serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}, "scrapeTimeout": "10s"}})
    monitor = rendered.one("ServiceMonitor", FULLNAME)
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    service = rendered.one("Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert monitor["spec"]["endpoints"] == [
        {"port": "http-metrics", "path": "/metrics", "scheme": "http", "interval": "30s", "scrapeTimeout": "10s"}
    ]
    assert service["spec"]["ports"][0]["name"] == "http-metrics"


def test_service_monitor_is_off_by_default(render):
    assert not render().has("ServiceMonitor")


def test_log_settings_reach_the_operator(render):
    env = render({"logLevel": "info,ferrocache_operator=debug", "logFormat": "text"}).env
    assert env["RUST_LOG"] == "info,ferrocache_operator=debug"
    assert env["FERROCACHE_LOG_FORMAT"] == "text"


def test_service_account_annotations_allow_irsa(render):
    role_arn = "arn:aws:iam::123456789012:role/ferrocache"
    rendered = render({"serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": role_arn}}})
    assert rendered.one("ServiceAccount")["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": role_arn}


def test_pod_placement_and_metadata_pass_through(render):
    values = {
        "imagePullSecrets": [{"name": "registry-credentials"}],
        "podAnnotations": {"example.com/scrape": "false"},
        "podLabels": {"team": "caches"},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "system", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}},
        "priorityClassName": "system-cluster-critical",
        "updateStrategy": {"type": "Recreate"},
        "extraEnv": [{"name": "AWS_REGION", "value": "eu-west-1"}],
        "metrics": {"service": {"annotations": {"prometheus.io/scrape": "true"}}},
    }
    rendered = render(values)
    template = rendered.deployment["spec"]["template"]
    assert template["metadata"]["annotations"] == values["podAnnotations"]
    assert template["metadata"]["labels"]["team"] == "caches"
    assert template["metadata"]["labels"]["app.kubernetes.io/component"] == "operator"
    for key in ["imagePullSecrets", "nodeSelector", "tolerations", "affinity", "priorityClassName"]:
        assert rendered.pod[key] == values[key], key
    assert rendered.deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert rendered.container["env"][-1] == {"name": "AWS_REGION", "value": "eu-west-1"}
    assert rendered.one("Service")["metadata"]["annotations"] == {"prometheus.io/scrape": "true"}


def test_release_named_after_the_chart_is_not_repeated(render):
    rendered = render(name="ferrocache")
    assert rendered.deployment["metadata"]["name"] == "ferrocache"
    assert rendered.one("Service")["metadata"]["name"] == "ferrocache-metrics"


def test_fullname_override_names_everything(render):
    rendered = render({"fullnameOverride": "cache-operator"})
    names = {obj["metadata"]["name"] for obj in rendered.objects}
    assert names == {"cache-operator", "cache-operator-leader-election", "cache-operator-metrics"}


def test_notes_document_the_crd_upgrade_step(render):
    notes = render().notes
    assert "kubectl apply --server-side -f crds/" in notes
    assert f"deployment/{FULLNAME}" in notes


# --- snapshot -------------------------------------------------------------------


def test_default_render_matches_the_snapshot(chart):
    """The full default render, committed so reviews show every change of it.
    Regenerate with UPDATE_SNAPSHOTS=1 scripts/chart/test.sh."""
    rendered = chart.render({}, name=RELEASE, namespace=NAMESPACE, is_install=True)
    text = "".join(f"# Source: {path}\n{rendered[path].strip()}\n---\n" for path in sorted(rendered))
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(text)
    assert SNAPSHOT.exists(), "no snapshot yet: run UPDATE_SNAPSHOTS=1 scripts/chart/test.sh"
    assert text == SNAPSHOT.read_text(), "the default render changed: review it, then UPDATE_SNAPSHOTS=1 scripts/chart/test.sh"
