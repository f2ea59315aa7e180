"""Kubernetes: each overlay rendered by kustomize (built into the pinned kubectl) and validated against the
Kubernetes OpenAPI schemas bundled in kubernetes-validate; then what the deployment promises."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest

from tests.deploy.support import OVERLAYS, pod_specs, render_overlay

pytestmark = pytest.mark.slow

# The oldest Kubernetes these manifests are meant for, and the newest the package knows.
VERSIONS = ("1.30.0", kubernetes_validate.latest_version())


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def test_there_is_more_than_one_overlay() -> None:
    assert {"production", "private-ca"} <= set(OVERLAYS)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rendered_objects_follow_the_kubernetes_schemas(overlay: str, version: str) -> None:
    for obj in render_overlay(overlay):
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as err:
            pytest.fail(f"{overlay}: {obj['kind']}/{obj['metadata']['name']} (Kubernetes {version}): {err.message}")


def test_the_schema_check_is_not_vacuous() -> None:
    deployment = copy.deepcopy(by_kind(render_overlay("production"), "Deployment")["tenantry-api"])
    deployment["spec"]["replicas"] = "three"
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["paht"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_referenced_never_inlined(overlay: str) -> None:
    objects = render_overlay(overlay)
    assert not [o for o in objects if o["kind"] == "Secret"], "a Secret in the manifests would be committed"
    for obj, spec in pod_specs(objects):
        for container in spec["containers"]:
            for item in container.get("env", []):
                value = item.get("value", "")
                assert not any(w in item["name"] for w in ("TOKEN", "KEY", "PASSWORD", "SECRET")) or not value, (
                    f"{obj['metadata']['name']}: {item['name']} is written in the manifest"
                )
            for source in container.get("envFrom", []):
                assert "secretRef" not in source or source["secretRef"]["name"] == "tenantry-secrets"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_api_scales_with_probes_and_is_scraped(overlay: str) -> None:
    deployments = by_kind(render_overlay(overlay), "Deployment")
    api = deployments["tenantry-api"]
    assert api["spec"]["replicas"] >= 2
    assert api["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    (container,) = api["spec"]["template"]["spec"]["containers"]
    assert container["args"][:1] == ["serve"]
    assert "--no-worker" in container["args"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    annotations = api["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert annotations["prometheus.io/port"] == str(container["ports"][0]["containerPort"])
    worker = deployments["tenantry-worker"]
    assert worker["spec"]["template"]["spec"]["containers"][0]["args"] == ["worker"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_migrations_run_as_a_job(overlay: str) -> None:
    (job,) = by_kind(render_overlay(overlay), "Job").values()
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["db", "upgrade"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_disruption_budgets_select_the_pods(overlay: str) -> None:
    objects = render_overlay(overlay)
    deployments = by_kind(objects, "Deployment")
    budgets = by_kind(objects, "PodDisruptionBudget")
    assert set(budgets) == set(deployments)
    for name, budget in budgets.items():
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        selector = budget["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items(), name
        assert budget["metadata"]["namespace"] == deployments[name]["metadata"]["namespace"]
    if "minAvailable" in budgets["tenantry-api"]["spec"]:
        assert budgets["tenantry-api"]["spec"]["minAvailable"] < deployments["tenantry-api"]["spec"]["replicas"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_requests_resources_and_runs_unprivileged(overlay: str) -> None:
    for obj, spec in pod_specs(render_overlay(overlay)):
        assert spec["securityContext"]["runAsNonRoot"] is True
        for container in spec["containers"]:
            name = f"{obj['metadata']['name']}/{container['name']}"
            requests = container["resources"]["requests"]
            assert {"cpu", "memory"} <= set(requests), name
            assert "memory" in container["resources"]["limits"], name
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}, f"{name}: no writable /tmp"


def test_the_private_ca_overlay_mounts_the_ca_where_tenantry_calls_upstreams() -> None:
    objects = render_overlay("private-ca")
    for name in ("tenantry-api", "tenantry-worker"):
        spec = by_kind(objects, "Deployment")[name]["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        mounts = {m["mountPath"]: m for m in spec["containers"][0]["volumeMounts"]}
        assert mounts["/etc/tenantry/ca"]["readOnly"] is True
        assert volumes[mounts["/etc/tenantry/ca"]["name"]]["configMap"]["name"] == "tenantry-ca"
