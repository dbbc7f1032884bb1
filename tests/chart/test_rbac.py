"""The operator's RBAC is exactly what it calls: this file is the list.

When the operator starts calling something new, add it here and to
charts/ferrocache/templates/rbac.yaml (or leader-election-rbac.yaml)."""

from __future__ import annotations

import pytest

from conftest import FULLNAME, NAMESPACE, RELEASE, rule_triples

READ_WRITE = ["get", "list", "watch", "create", "patch", "update"]
CHILDREN = ["get", "list", "watch", "create", "patch", "update", "delete"]

# (API group, resources, verbs), "" being the core group.
OPERATOR_RULES = [
    ("ferrocache.io", ["redisclusters", "restores"], READ_WRITE),
    # Retention deletes expired automatic Backups.
    ("ferrocache.io", ["backups"], READ_WRITE + ["delete"]),
    ("ferrocache.io", ["redisclusters/status", "backups/status", "restores/status"], ["get", "patch", "update"]),
    ("ferrocache.io", ["redisclusters/finalizers", "backups/finalizers", "restores/finalizers"], ["update"]),
    ("apps", ["statefulsets"], CHILDREN),
    ("", ["services", "configmaps"], CHILDREN),
    ("", ["pods"], ["get", "list", "watch", "delete"]),
    ("", ["secrets"], ["get", "list", "watch"]),
    ("events.k8s.io", ["events"], ["create", "patch"]),
    ("", ["events"], ["create", "patch"]),
]


def expected_operator_triples() -> set[tuple[str, str, str, None]]:
    return {(group, resource, verb, None) for group, resources, verbs in OPERATOR_RULES for resource in resources for verb in verbs}


def expected_lease_triples(lease_name: str) -> set[tuple[str, str, str, str | None]]:
    # create cannot be limited by name; the rest only reaches this release's Lease.
    return {("coordination.k8s.io", "leases", "create", None)} | {
        ("coordination.k8s.io", "leases", verb, lease_name) for verb in ["get", "update", "patch"]
    }


def test_cluster_role_grants_exactly_the_calls_of_the_operator(render):
    rendered = render()
    role = rendered.one("ClusterRole", FULLNAME)
    assert rule_triples(role["rules"]) == expected_operator_triples()


def test_lease_role_grants_exactly_leader_election_in_the_release_namespace(render):
    rendered = render()
    role = rendered.one("Role", f"{FULLNAME}-leader-election")
    assert role["metadata"]["namespace"] == NAMESPACE
    lease_name = rendered.env["FERROCACHE_LEASE_NAME"]
    assert lease_name == FULLNAME
    assert rule_triples(role["rules"]) == expected_lease_triples(lease_name)


def test_custom_lease_name_is_the_one_the_role_allows(render):
    rendered = render({"leaderElection": {"leaseName": "ferrocache-operator"}})
    role = rendered.one("Role", f"{FULLNAME}-leader-election")
    assert rendered.env["FERROCACHE_LEASE_NAME"] == "ferrocache-operator"
    assert rule_triples(role["rules"]) == expected_lease_triples("ferrocache-operator")


def test_no_rule_uses_a_wildcard(render):
    for values in [{}, {"watchNamespace": "caches"}]:
        for kind in ["ClusterRole", "Role"]:
            for role in render(values).all(kind):
                for group, resource, verb, _ in rule_triples(role["rules"]):
                    assert "*" not in (group, resource, verb), role["metadata"]["name"]


def test_bindings_grant_the_roles_to_the_operator_service_account(render):
    rendered = render()
    service_account = rendered.one("ServiceAccount")["metadata"]["name"]
    assert rendered.pod["serviceAccountName"] == service_account
    for kind, role_kind, role_name in [
        ("ClusterRoleBinding", "ClusterRole", FULLNAME),
        ("RoleBinding", "Role", f"{FULLNAME}-leader-election"),
    ]:
        binding = rendered.one(kind)
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": service_account, "namespace": NAMESPACE}]


def test_watch_namespace_gets_a_role_with_the_same_rules_instead_of_a_cluster_role(render):
    rendered = render({"watchNamespace": "caches"})
    assert not rendered.has("ClusterRole")
    assert not rendered.has("ClusterRoleBinding")
    role = rendered.one("Role", FULLNAME)
    assert role["metadata"]["namespace"] == "caches"
    assert rule_triples(role["rules"]) == expected_operator_triples()
    binding = rendered.one("RoleBinding", FULLNAME)
    assert binding["metadata"]["namespace"] == "caches"
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": FULLNAME}
    # The ServiceAccount stays in the release namespace, and so does the Lease.
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}]
    lease_role = rendered.one("Role", f"{FULLNAME}-leader-election")
    assert lease_role["metadata"]["namespace"] == NAMESPACE


def test_leader_election_off_creates_no_lease_rbac(render):
    rendered = render({"leaderElection": {"enabled": False}})
    assert not rendered.has("Role")
    assert not rendered.has("RoleBinding")
    assert rendered.has("ClusterRole", FULLNAME)


@pytest.mark.parametrize("values", [{"rbac": {"create": False}}, {"rbac": {"create": False}, "watchNamespace": "caches"}])
def test_rbac_create_off_creates_no_rbac(render, values):
    rendered = render(values)
    for kind in ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]:
        assert not rendered.has(kind), kind


def test_existing_service_account_is_bound_and_used(render):
    rendered = render({"serviceAccount": {"create": False, "name": "platform-operator"}})
    assert not rendered.has("ServiceAccount")
    assert rendered.pod["serviceAccountName"] == "platform-operator"
    for kind in ["ClusterRoleBinding", "RoleBinding"]:
        assert rendered.one(kind)["subjects"][0]["name"] == "platform-operator"


def test_release_name_does_not_leak_into_rules(render):
    """The rules depend on no release detail except the Lease name."""
    other = render(name="other")
    assert rule_triples(other.one("ClusterRole", "other-ferrocache")["rules"]) == expected_operator_triples()
    assert RELEASE not in str(other.objects)
