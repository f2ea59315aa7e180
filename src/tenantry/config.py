"""Settings: one object read from ``TENANTRY_*`` environment variables, built in the entrypoint and injected."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tenantry.hostnames import normalise_hostname

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./tenantry.db"


class Settings(BaseSettings):
    """Everything configurable. Secrets are ``SecretStr`` so they never print by accident."""

    model_config = SettingsConfigDict(env_prefix="TENANTRY_", env_file=None, extra="ignore")

    # -- store ------------------------------------------------------------------------------------
    database_url: str = DEFAULT_DATABASE_URL
    database_echo: bool = False
    database_pool_size: int = Field(10, ge=1, description="PostgreSQL: connections each process keeps open")
    database_max_overflow: int = Field(20, ge=0, description="PostgreSQL: connections opened beyond those under load")
    database_pool_timeout_seconds: float = Field(
        10.0, gt=0, description="How long a request waits for a free connection before answering 503"
    )
    max_concurrent_writes: int = Field(
        12,
        ge=1,
        description="Writes (POST, PUT, PATCH, DELETE) one process runs at once; each uses up to two connections, "
        "so keep it at most half the pool (size + overflow)",
    )
    write_queue_seconds: float = Field(
        10.0, ge=0, description="How long a write waits for its turn before answering 503 with Retry-After"
    )

    # -- API --------------------------------------------------------------------------------------
    create_wait_seconds: float = Field(10.0, ge=0, description="How long POST /tenants waits for the first reconcile")
    reserved_slugs: frozenset[str] = frozenset(
        {
            "admin",
            "api",
            "www",
            "mail",
            "auth",
            "root",
            "system",
            "tenantry",
            "static",
            "portal",
            "login",
            "logout",
            "health",
            "healthz",
            "readyz",
            "metrics",
            "smtp",
            "imap",
            "autoconfig",
            "autodiscover",
        }
    )
    default_quota_bytes: int = Field(10 * 1024**3, gt=0)
    mail_domain_base: str = "tenants.example.test"

    # -- mail domains: proof of ownership and live DNS checks ---------------------------------------
    dns_resolvers: str = Field(
        "",
        description="Nameservers (host or host:port, comma-separated) for ownership and record checks; "
        "empty: the system's",
    )
    dns_timeout_seconds: float = Field(5.0, gt=0)
    domain_verify_timeout_seconds: float = Field(
        7 * 24 * 3600.0, gt=0, description="How long a custom domain may stay unproven before verification stops"
    )
    domain_check_base_seconds: float = Field(30.0, gt=0, description="First wait between ownership checks")
    domain_check_cap_seconds: float = Field(3600.0, gt=0, description="Longest wait between ownership checks")

    # -- lifecycle -----------------------------------------------------------------------------------
    delete_grace_seconds: float = Field(
        7 * 24 * 3600.0, ge=0, description="How long a deleted tenant can be restored before it is purged"
    )
    permanent_retry_seconds: float = Field(
        3600.0, gt=0, description="How often a step stopped by a permanent error is tried again anyway"
    )
    idempotency_key_seconds: float = Field(24 * 3600.0, gt=0, description="How long an Idempotency-Key is kept")

    # -- self-service limits (ordinary users; platform admins are not limited) ----------------------
    self_service_max_tenants: int = Field(3, ge=0, description="Workspaces one person may own")
    self_service_creations: int = Field(5, ge=1, description="Workspaces one person may create per window")
    self_service_window_seconds: float = Field(3600.0, gt=0)

    # -- reconciler -------------------------------------------------------------------------------
    retry_base_seconds: float = Field(2.0, gt=0)
    retry_cap_seconds: float = Field(300.0, gt=0)
    resync_interval_seconds: float = Field(
        600.0, gt=0, description="How often a worker lists each upstream in bulk and repairs the tenants that drifted"
    )
    full_resync_seconds: float = Field(
        86400.0,
        gt=0,
        description="How often each healthy step is also ensured on its own (for drift a bulk listing cannot show)",
    )
    pending_poll_seconds: float = Field(5.0, gt=0, description="Recheck interval for steps waiting on an upstream")
    lease_seconds: float = Field(60.0, gt=0)
    worker_poll_seconds: float = Field(1.0, gt=0)
    worker_batch_size: int = Field(20, gt=0)
    worker_concurrency: int = Field(20, gt=0)
    step_timeout_seconds: float = Field(60.0, gt=0)
    create_settle_seconds: float = Field(
        30.0,
        ge=0,
        description="How long after a create that got no answer a retry waits for it to appear upstream before "
        "creating again (for upstreams that accept duplicate names: oCIS spaces)",
    )
    run_worker_in_api: bool = True

    # -- upstreams (a step whose URL is unset reports "skipped: not configured") -------------------
    http_timeout_seconds: float = Field(10.0, gt=0)
    ca_bundle: Path | None = None

    authentik_url: str | None = None
    authentik_token: SecretStr | None = None
    authentik_group_prefix: str = "tenant-"

    stalwart_url: str | None = None
    stalwart_api_key: SecretStr | None = None
    stalwart_username: str | None = None
    stalwart_password: SecretStr | None = None

    ocis_url: str | None = None
    ocis_auth: Literal["app-token", "client-credentials"] = "app-token"
    ocis_username: str | None = None
    ocis_app_token: SecretStr | None = None
    ocis_token_url: str | None = None
    ocis_client_id: str | None = None
    ocis_client_secret: SecretStr | None = None
    ocis_scope: str = "openid profile email"

    # -- API authentication ----------------------------------------------------------------------
    auth_enabled: bool = True
    oidc_issuer: str | None = None
    oidc_audience: str = Field("tenantry", description="Accepted token audiences (client ids), comma-separated")
    oidc_providers: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Trusted providers as JSON, each issuer (with its trailing slash) to the client ids accepted "
        'from it: {"https://auth.example.com/application/o/tenantry/": ["<portal client id>"], ...}; '
        "added to TENANTRY_OIDC_ISSUER/_AUDIENCE",
    )
    oidc_cli_client_id: str = Field("tenantry-cli", description="The CLI's public client id (device login)")
    oidc_cli_issuer: str | None = Field(
        None, description="The CLI's issuer; default: the trusted provider that lists the CLI's client id"
    )
    oidc_leeway_seconds: float = Field(30.0, ge=0, le=300, description="Clock skew allowed on exp/nbf/iat")
    oidc_jwks_min_refresh_seconds: float = Field(
        10.0, ge=0, description="Least time between JWKS fetches (an unknown kid triggers at most one per interval)"
    )
    oidc_token_cache_size: int = Field(
        4096, ge=0, description="Verified access tokens kept until they expire (LRU) so a repeat skips the signature"
    )
    oidc_introspect: bool = Field(
        False, description="Ask the issuer's introspection endpoint whether each token is still active (revocation)"
    )
    oidc_introspect_cache_seconds: float = Field(
        5.0, ge=0, le=300, description="How long an 'active' introspection answer is trusted"
    )
    oidc_introspect_clients: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='Introspection credentials as JSON, {"<client id>": "<client secret>"}: authentik answers '
        "only with the secret of the provider a token was issued to; the portal's is known already",
    )
    admin_group: str = "tenantry-admins"
    self_service: bool = True

    # -- portal (pages on the API's origin; a confidential OIDC client of its own) --------------------
    portal_client_id: str | None = Field(
        None, description="The portal's client id (a confidential provider, authorization code); unset: no sign-in"
    )
    portal_client_secret: SecretStr | None = None
    portal_issuer: str | None = Field(
        None,
        description="The portal provider's issuer; default: the trusted provider listing the portal's client id, "
        "else TENANTRY_OIDC_ISSUER",
    )
    portal_url: str | None = Field(
        None, description="The portal's public URL; its sign-in callback is <url>/auth/callback (default: as asked)"
    )
    portal_session_seconds: float = Field(8 * 3600.0, gt=0, description="A portal session ends after this long idle")

    # -- logging -----------------------------------------------------------------------------------
    log_level: str = "INFO"
    log_json: bool = False

    @field_validator("oidc_providers", mode="before")
    @classmethod
    def _providers_from_json_with_ids_maybe_comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except ValueError as err:
                raise ValueError(f"TENANTRY_OIDC_PROVIDERS is not JSON: {err}") from err
        if isinstance(value, dict):
            return {k: v.split(",") if isinstance(v, str) else v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _refuse_incomplete_configuration(self) -> Self:
        if self.auth_enabled and not self.trusted_providers:
            raise ValueError(
                "TENANTRY_OIDC_ISSUER or TENANTRY_OIDC_PROVIDERS is required when API authentication is on "
                "(set TENANTRY_AUTH_ENABLED=false only for local development)"
            )
        self._refuse_bad_providers()
        self._refuse_half_configured_upstreams()
        try:
            self.mail_domain_base = normalise_hostname(self.mail_domain_base)
        except ValueError as err:
            raise ValueError(f"TENANTRY_MAIL_DOMAIN_BASE {err}") from err
        if len(self.mail_domain_base) > 253 - 64:
            raise ValueError("TENANTRY_MAIL_DOMAIN_BASE is too long to prefix with a 63-character slug")
        if self.domain_check_cap_seconds < self.domain_check_base_seconds:
            raise ValueError(
                "TENANTRY_DOMAIN_CHECK_CAP_SECONDS must not be smaller than TENANTRY_DOMAIN_CHECK_BASE_SECONDS"
            )
        if self.retry_cap_seconds < self.retry_base_seconds:
            raise ValueError("TENANTRY_RETRY_CAP_SECONDS must not be smaller than TENANTRY_RETRY_BASE_SECONDS")
        return self

    def _refuse_bad_providers(self) -> None:
        for issuer, client_ids in self.trusted_providers.items():
            if not issuer.startswith(("https://", "http://")):
                raise ValueError(f"trusted issuer {issuer!r} is not an http(s) URL")
            # authentik builds "<base>/application/o/<slug>/" and compares iss exactly: without the slash
            # every token of that provider would be refused as coming from an unknown issuer.
            if "/application/o/" in issuer and not issuer.endswith("/"):
                raise ValueError(f"trusted issuer {issuer!r} must end with '/' as authentik's issuers do")
            if not client_ids:
                raise ValueError(f"trusted issuer {issuer!r} lists no client id")
        if self.oidc_cli_issuer is not None and self.oidc_cli_issuer not in self.trusted_providers:
            raise ValueError("TENANTRY_OIDC_CLI_ISSUER must be one of the trusted issuers")
        if self.auth_enabled and self.oidc_introspect:
            known = self.introspection_secrets
            missing = sorted({c for ids in self.trusted_providers.values() for c in ids if c not in known})
            if missing:
                raise ValueError(
                    "TENANTRY_OIDC_INTROSPECT needs the client secret of every trusted client id in "
                    f"TENANTRY_OIDC_INTROSPECT_CLIENTS; missing: {', '.join(missing)}"
                )

    @model_validator(mode="after")
    def _refuse_a_portal_the_api_would_not_trust(self) -> Self:
        if self.portal_client_id is None:
            return self
        if self.portal_client_secret is None:
            raise ValueError("TENANTRY_PORTAL_CLIENT_SECRET is required with TENANTRY_PORTAL_CLIENT_ID")
        issuer = self.portal_provider
        if issuer is None or self.portal_client_id not in self.trusted_providers.get(issuer, []):
            raise ValueError(
                f"the portal signs people in through {issuer or 'no issuer'} as {self.portal_client_id}, a provider "
                "the API does not trust: list it in TENANTRY_OIDC_PROVIDERS"
            )
        if self.portal_url is not None:
            self.portal_url = self.portal_url.rstrip("/")
        return self

    def _refuse_half_configured_upstreams(self) -> None:
        """An upstream with a URL but no credentials is a typo to report, not a step to skip silently."""
        missing: list[str] = []
        if self.authentik_url and self.authentik_token is None:
            missing.append("TENANTRY_AUTHENTIK_TOKEN (TENANTRY_AUTHENTIK_URL is set)")
        if (
            self.stalwart_url
            and self.stalwart_api_key is None
            and not (self.stalwart_username and self.stalwart_password is not None)
        ):
            missing.append(
                "TENANTRY_STALWART_API_KEY or TENANTRY_STALWART_USERNAME/_PASSWORD (TENANTRY_STALWART_URL is set)"
            )
        if (
            self.ocis_url
            and self.ocis_auth == "app-token"
            and not (self.ocis_username and self.ocis_app_token is not None)
        ):
            missing.append("TENANTRY_OCIS_USERNAME and TENANTRY_OCIS_APP_TOKEN (TENANTRY_OCIS_AUTH=app-token)")
        if (
            self.ocis_url
            and self.ocis_auth == "client-credentials"
            and not (self.ocis_token_url and self.ocis_client_id and self.ocis_client_secret is not None)
        ):
            missing.append(
                "TENANTRY_OCIS_TOKEN_URL, TENANTRY_OCIS_CLIENT_ID and TENANTRY_OCIS_CLIENT_SECRET "
                "(TENANTRY_OCIS_AUTH=client-credentials)"
            )
        if missing:
            raise ValueError("missing settings: " + "; ".join(missing))

    @property
    def audiences(self) -> list[str]:
        return [a.strip() for a in self.oidc_audience.split(",") if a.strip()]

    @property
    def trusted_providers(self) -> dict[str, list[str]]:
        """Each trusted issuer with the client ids accepted from it: TENANTRY_OIDC_PROVIDERS plus the simple case."""
        providers = {issuer.strip(): _clean(ids) for issuer, ids in self.oidc_providers.items()}
        if self.oidc_issuer:
            known = providers.setdefault(self.oidc_issuer, [])
            known.extend(a for a in self.audiences if a not in known)
        return providers

    @property
    def introspection_secrets(self) -> dict[str, SecretStr]:
        """Each client id's secret for the introspection endpoint: TENANTRY_OIDC_INTROSPECT_CLIENTS and the portal's."""
        known = {c.strip(): secret for c, secret in self.oidc_introspect_clients.items()}
        if self.portal_client_id and self.portal_client_secret is not None:
            known.setdefault(self.portal_client_id, self.portal_client_secret)
        return known

    @property
    def cli_issuer(self) -> str | None:
        """Where the CLI logs in: the configured issuer, else the trusted provider listing its client id."""
        if self.oidc_cli_issuer is not None:
            return self.oidc_cli_issuer
        return next((i for i, ids in self.trusted_providers.items() if self.oidc_cli_client_id in ids), None)

    @property
    def portal_provider(self) -> str | None:
        """The portal's issuer: the configured one, else the trusted provider listing its client id."""
        if self.portal_issuer is not None:
            return self.portal_issuer
        listed = (i for i, ids in self.trusted_providers.items() if self.portal_client_id in ids)
        return next(listed, self.oidc_issuer)

    @property
    def nameservers(self) -> list[str]:
        return [n.strip() for n in self.dns_resolvers.split(",") if n.strip()]

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _clean(client_ids: list[str]) -> list[str]:
    return list(dict.fromkeys(c.strip() for c in client_ids if c.strip()))


def describe_error(err: ValueError) -> str:
    """A configuration error, one line per setting named by its environment variable, never echoing the value
    given: it may be a secret (pydantic's own message repeats every refused input)."""
    if not isinstance(err, ValidationError):
        return str(err)  # pydantic-settings' own errors (a value that is not JSON) name the setting only
    lines = []
    for error in err.errors(include_url=False, include_input=False, include_context=False):
        head, *rest = error["loc"] or ("",)
        name = f"TENANTRY_{str(head).upper()}" if head else "the settings"
        where = "".join(f"[{part!r}]" for part in rest)
        lines.append(f"{name}{where}: {error['msg']}")
    return "\n".join(lines)
