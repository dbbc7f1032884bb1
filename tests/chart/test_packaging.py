"""The Dockerfile and the workflows agree with the chart. Neither can run here
(no Docker engine), so these read them."""

from __future__ import annotations

import re

import yaml

from conftest import CHART_DIR, REPO


def dockerfile() -> str:
    return (REPO / "Dockerfile").read_text()


def test_image_entrypoint_is_the_operator_and_holds_the_node():
    text = dockerfile()
    assert 'ENTRYPOINT ["/usr/local/bin/ferrocache-operator"]' in text
    copy = re.search(r"^COPY --from=builder (.+) /usr/local/bin/$", text, re.M)
    assert copy is not None
    assert {path.rsplit("/", 1)[-1] for path in copy.group(1).split()} == {"ferrocache-operator", "ferrocache-node"}


def test_image_user_is_the_chart_default_user():
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    user = values["podSecurityContext"]["runAsUser"]
    group = values["podSecurityContext"]["runAsGroup"]
    assert re.search(rf"^USER {user}:{group}$", dockerfile(), re.M)


def test_image_builds_on_the_glibc_it_runs_on():
    """jemalloc needs glibc: a bookworm builder for a debian12 distroless cc runtime."""
    text = dockerfile()
    assert re.search(r"^ARG RUST_IMAGE=rust:[0-9.]+-bookworm$", text, re.M)
    assert re.search(r"^ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot$", text, re.M)


def test_docker_context_keeps_every_workspace_member():
    members = re.search(r'^members = \[(.*)\]$', (REPO / "Cargo.toml").read_text(), re.M).group(1)
    ignored = {line.strip().rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines() if line.strip() and not line.startswith("#")}
    for member in re.findall(r'"([^"]+)"', members):
        assert member not in ignored, member
    for needed in ["Cargo.toml", "Cargo.lock"]:
        assert needed not in ignored


def load_workflow(name: str) -> dict:
    return yaml.safe_load((REPO / ".github" / "workflows" / name).read_text())


def test_workflows_parse_and_every_step_either_uses_or_runs():
    for name in ["e2e.yml", "ci.yml"]:
        workflow = load_workflow(name)
        assert workflow["jobs"], name
        for job in workflow["jobs"].values():
            for step in job["steps"]:
                assert ("uses" in step) != ("run" in step), step


def test_e2e_workflow_installs_the_built_image_and_runs_the_e2e_tests():
    steps = load_workflow("e2e.yml")["jobs"]["e2e"]["steps"]
    runs = "\n".join(step.get("run", "") for step in steps)
    assert "kind load docker-image" in runs
    assert "helm install ferrocache charts/ferrocache" in runs
    assert "image.pullPolicy=Never" in runs
    assert "sudo ip route add" in runs
    assert "FERROCACHE_E2E_S3_ENDPOINT_FROM_PODS" in runs
    assert "cargo test -p ferrocache-operator --test e2e -- --ignored --test-threads=1" in runs
    test_step = next(step for step in steps if "--test e2e" in step.get("run", ""))
    assert test_step["env"]["FERROCACHE_E2E_OPERATOR"] == "external"
    assert any(step.get("uses", "").startswith("actions/upload-artifact") and step.get("if") == "failure()" for step in steps)
