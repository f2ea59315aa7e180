"""Turns a request's bearer token into an :class:`Actor`: 401 for a bad token, 503 when keys are unreachable."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import structlog
from fastapi import Request

from tenantry.auth.actor import Actor
from tenantry.auth.introspection import Introspector
from tenantry.auth.tokens import (
    InvalidTokenError,
    IssuerUnavailableError,
    MissingTokenError,
    TokenVerifier,
    TrustedIssuers,
    bearer_token,
)
from tenantry.config import Settings
from tenantry.container import Container
from tenantry.errors import AppError, UnavailableError

log = structlog.get_logger("tenantry.auth")


class UnauthorizedError(AppError):
    status_code = 401
    code = "unauthorized"

    def __init__(self, reason: str, *, token_presented: bool = True) -> None:
        # RFC 6750 §3: tell the client which scheme, and why, without echoing the token. A request that
        # carried no token gets the bare challenge (§3.1: no error code when authentication is absent).
        challenge = 'Bearer realm="tenantry"'
        if token_presented:
            safe = reason.replace('"', "'")
            challenge += f', error="invalid_token", error_description="{safe}"'
        super().__init__(f"a valid access token is required ({reason})", headers={"WWW-Authenticate": challenge})


def build_validator(settings: Settings, http: httpx.AsyncClient, **options: Any) -> TrustedIssuers:
    """A validator trusting exactly the configured providers, each for its own client ids.

    With ``TENANTRY_OIDC_INTROSPECT`` every token is also checked at the issuer's introspection endpoint.
    """
    introspector = None
    if settings.oidc_introspect:
        introspector = Introspector(
            settings.introspection_secrets,
            http,
            cache_seconds=settings.oidc_introspect_cache_seconds,
            max_entries=settings.oidc_token_cache_size,
            **({"clock": options["clock"]} if "clock" in options else {}),
        )
    return TrustedIssuers(
        settings.trusted_providers,
        http=http,
        leeway=settings.oidc_leeway_seconds,
        jwks_min_refresh_interval=settings.oidc_jwks_min_refresh_seconds,
        token_cache_size=settings.oidc_token_cache_size,
        introspector=introspector,
        **options,
    )


def build_actor_resolver(
    settings: Settings, container: Container, validator: TokenVerifier | None = None
) -> Callable[[Request], Awaitable[Actor]]:
    """The dependency behind every protected route, sharing one validator (and its JWKS caches) per process."""
    if validator is None:
        validator = build_validator(settings, container.http_client("oidc"))
    admin_group = settings.admin_group

    async def resolve(request: Request) -> Actor:
        try:
            identity = await validator.validate(bearer_token(request.headers.get("authorization")))
        except InvalidTokenError as err:
            log.info("auth.rejected", reason=err.reason, path=request.url.path)
            raise UnauthorizedError(err.reason, token_presented=not isinstance(err, MissingTokenError)) from err
        except IssuerUnavailableError as err:
            log.warning("auth.issuer_unavailable", path=request.url.path)
            raise UnavailableError(
                "the identity provider cannot be reached to verify the token; retry shortly",
                headers={"Retry-After": "5"},
            ) from err
        return Actor(sub=identity.sub, is_admin=identity.is_member(admin_group))

    return resolve
