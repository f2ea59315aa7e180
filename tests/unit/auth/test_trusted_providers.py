"""Which providers the API trusts: TENANTRY_OIDC_PROVIDERS, the single-issuer settings, and the CLI's client."""

from __future__ import annotations

import json

import pytest

from tenantry.config import Settings

BASE = "https://auth.example.test/application/o"
PORTAL, CLI, MACHINES = f"{BASE}/tenantry/", f"{BASE}/tenantry-cli/", f"{BASE}/tenantry-machines/"


def test_providers_are_read_from_json_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "TENANTRY_OIDC_PROVIDERS", json.dumps({PORTAL: ["portal-id"], CLI: ["tenantry-cli"], MACHINES: "m1, m2"})
    )

    settings = Settings()

    assert settings.trusted_providers == {PORTAL: ["portal-id"], CLI: ["tenantry-cli"], MACHINES: ["m1", "m2"]}
    assert settings.auth_enabled is True


def test_the_single_issuer_settings_are_the_simple_case_and_add_to_the_list() -> None:
    simple = Settings(oidc_issuer=PORTAL, oidc_audience="portal-id, other-id")
    both = Settings(
        oidc_issuer=PORTAL, oidc_audience="portal-id", oidc_providers={PORTAL: ["x"], CLI: ["tenantry-cli"]}
    )

    assert simple.trusted_providers == {PORTAL: ["portal-id", "other-id"]}
    assert both.trusted_providers == {PORTAL: ["x", "portal-id"], CLI: ["tenantry-cli"]}


def test_the_cli_logs_in_at_the_provider_that_lists_its_client_id() -> None:
    settings = Settings(oidc_providers={PORTAL: ["portal-id"], CLI: ["tenantry-cli"]})

    assert settings.cli_issuer == CLI
    assert Settings(oidc_issuer=PORTAL, oidc_audience="portal-id").cli_issuer is None
    pinned = Settings(oidc_providers={PORTAL: ["portal-id"], CLI: ["tenantry-cli"]}, oidc_cli_issuer=PORTAL)
    assert pinned.cli_issuer == PORTAL


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "TENANTRY_OIDC_ISSUER or TENANTRY_OIDC_PROVIDERS is required"),
        ({"oidc_providers": {PORTAL.rstrip("/"): ["portal-id"]}}, "must end with '/'"),
        ({"oidc_providers": {"auth.example.test/application/o/x/": ["id"]}}, "is not an http"),
        ({"oidc_providers": {PORTAL: [" ", ""]}}, "lists no client id"),
        ({"oidc_providers": {PORTAL: ["portal-id"]}, "oidc_cli_issuer": CLI}, "must be one of the trusted issuers"),
    ],
)
def test_an_unusable_provider_list_is_refused_at_start(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings(**values)


def test_the_json_text_is_also_accepted_as_a_value() -> None:
    settings = Settings(oidc_providers=json.dumps({PORTAL: ["portal-id"]}))

    assert settings.trusted_providers == {PORTAL: ["portal-id"]}


def test_malformed_json_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="TENANTRY_OIDC_PROVIDERS is not JSON"):
        Settings(oidc_providers="{not json")
    monkeypatch.setenv("TENANTRY_OIDC_PROVIDERS", "{not json")
    with pytest.raises(ValueError, match="oidc_providers"):
        Settings()


def test_introspection_needs_the_secret_of_every_trusted_client_id() -> None:
    providers = {PORTAL: ["portal-id"], CLI: ["tenantry-cli"], MACHINES: ["m1"]}

    with pytest.raises(ValueError, match="missing: m1, portal-id, tenantry-cli"):
        Settings(oidc_providers=providers, oidc_introspect=True)
    with pytest.raises(ValueError, match=r"missing: tenantry-cli \[type"):
        Settings(
            oidc_providers=providers,
            oidc_introspect=True,
            oidc_introspect_clients={"m1": "m1-secret"},
            portal_client_id="portal-id",
            portal_client_secret="portal-secret",
        )


def test_introspection_secrets_come_from_json_and_the_portal_and_never_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "TENANTRY_OIDC_INTROSPECT_CLIENTS", json.dumps({"m1": "m1-secret", "tenantry-cli": "cli-secret"})
    )

    settings = Settings(
        oidc_providers={PORTAL: ["portal-id"], CLI: ["tenantry-cli"], MACHINES: ["m1"]},
        oidc_introspect=True,
        portal_client_id="portal-id",
        portal_client_secret="portal-secret",
    )

    secrets = {cid: s.get_secret_value() for cid, s in settings.introspection_secrets.items()}
    assert secrets == {"m1": "m1-secret", "tenantry-cli": "cli-secret", "portal-id": "portal-secret"}
    assert settings.oidc_introspect_cache_seconds == 5.0
    assert "m1-secret" not in repr(settings)
    assert "m1-secret" not in str(settings.model_dump())
