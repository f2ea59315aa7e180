"""Settings refuse configurations that would fail later or silently do less than asked."""

from __future__ import annotations

from typing import Any

import pytest

from tenantry.config import Settings


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"authentik_url": "https://auth.example.com"}, "TENANTRY_AUTHENTIK_TOKEN"),
        ({"stalwart_url": "https://mail.example.com"}, "TENANTRY_STALWART_API_KEY"),
        ({"stalwart_url": "https://mail.example.com", "stalwart_username": "admin"}, "TENANTRY_STALWART_API_KEY"),
        ({"ocis_url": "https://files.example.com"}, "TENANTRY_OCIS_APP_TOKEN"),
        ({"ocis_url": "https://files.example.com", "ocis_auth": "client-credentials"}, "TENANTRY_OCIS_CLIENT_ID"),
        ({"retry_base_seconds": 10, "retry_cap_seconds": 1}, "TENANTRY_RETRY_CAP_SECONDS"),
    ],
)
def test_half_configured_settings_are_refused_naming_what_is_missing(values: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        Settings(auth_enabled=False, **values)


def test_api_authentication_needs_an_issuer() -> None:
    with pytest.raises(ValueError, match="TENANTRY_OIDC_ISSUER"):
        Settings()
    assert Settings(oidc_issuer="https://auth.example.com/application/o/tenantry/").auth_enabled is True


def test_secrets_do_not_show_in_the_settings_repr() -> None:
    settings = Settings(auth_enabled=False, authentik_url="https://auth.example.com", authentik_token="tok-123456789")
    assert "tok-123456789" not in repr(settings)
    assert "tok-123456789" not in str(settings.model_dump())


def test_the_mail_domain_base_is_normalised_and_a_bad_one_refused() -> None:
    assert Settings(auth_enabled=False, mail_domain_base="Mail.Example.TEST.").mail_domain_base == "mail.example.test"
    with pytest.raises(ValueError, match="TENANTRY_MAIL_DOMAIN_BASE"):
        Settings(auth_enabled=False, mail_domain_base="not a domain")
    with pytest.raises(ValueError, match="TENANTRY_MAIL_DOMAIN_BASE is too long"):
        Settings(auth_enabled=False, mail_domain_base=".".join(["a" * 60] * 4) + ".test")


def test_audiences_are_read_as_a_comma_separated_list() -> None:
    settings = Settings(auth_enabled=False, oidc_audience=" portal, cli ,,machine")
    assert settings.audiences == ["portal", "cli", "machine"]
