"""RFC 7662 token introspection: whether the issuer still holds an access token active (not revoked, not ended).

authentik serves it at ``/application/o/introspect/`` (the discovery document's ``introspection_endpoint``) and
answers only about tokens of the provider whose client id and secret authenticate the request
(``providers/oauth2/views/introspection.py``), so each client id the API trusts needs its own secret here.
authentik also answers ``{"active": false}``, not 401, to credentials it does not accept: a wrong secret makes
every token of that client look revoked.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx
import structlog
from pydantic import SecretStr

from tenantry.auth.token_lru import TokenLru, token_digest

log = structlog.get_logger(__name__)


class IntrospectionUnavailableError(Exception):
    """No trustworthy answer could be had; the message names the cause, never a token or a secret."""


@dataclass(frozen=True)
class _Answer:
    active: bool
    until: float


class Introspector:
    """Asks the introspection endpoint about a token and remembers the answer briefly, in a bounded cache.

    An *active* answer is trusted for ``cache_seconds`` (never past the token's ``exp``), so a revocation takes
    effect within that time. An *inactive* answer is kept until the token expires: a revoked token never becomes
    active again, and asking again would only load the issuer.
    """

    def __init__(
        self,
        client_secrets: Mapping[str, SecretStr],
        http: httpx.AsyncClient,
        *,
        cache_seconds: float = 5,
        max_entries: int = 4096,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secrets = dict(client_secrets)
        self._http = http
        self._cache_seconds = cache_seconds
        self._answers: TokenLru[_Answer] = TokenLru(max_entries)
        self._clock = clock

    def __repr__(self) -> str:
        return f"Introspector(clients={sorted(self._secrets)})"

    async def active(self, token: str, *, endpoint: str, client_id: str, exp: float) -> bool:
        """Whether the issuer holds the token active; raises IntrospectionUnavailableError without an answer."""
        digest = token_digest(token)
        now = self._clock()
        cached = self._answers.get(digest)
        if cached is not None and cached.until > now:
            return cached.active
        active = await self._ask(token, endpoint=endpoint, client_id=client_id)
        until = exp if not active else min(exp, now + self._cache_seconds)
        if until > now:
            self._answers.put(digest, _Answer(active, until))
        else:
            self._answers.pop(digest)
        return active

    async def _ask(self, token: str, *, endpoint: str, client_id: str) -> bool:
        secret = self._secrets.get(client_id)
        if secret is None:
            log.error("auth.introspection.no_credentials", client_id=client_id)
            raise IntrospectionUnavailableError(f"no introspection credentials for client {client_id}")
        # client_secret_post: authentik reads the form when no Basic header is sent (utils.extract_client_auth),
        # and the form needs no percent-encoding rules of its own.
        form = {
            "token": token,
            "token_type_hint": "access_token",
            "client_id": client_id,
            "client_secret": secret.get_secret_value(),
        }
        try:
            response = await self._http.post(endpoint, data=form, headers={"Accept": "application/json"})
        except httpx.HTTPError as err:
            log.warning("auth.introspection.unreachable", endpoint=endpoint, cause=type(err).__name__)
            raise IntrospectionUnavailableError(f"{endpoint}: {type(err).__name__}") from err
        if response.status_code in (400, 401, 403):
            log.error("auth.introspection.refused", endpoint=endpoint, client_id=client_id, status=response.status_code)
            raise IntrospectionUnavailableError(f"{endpoint} refused the client credentials of {client_id}")
        if response.status_code != 200:
            log.warning("auth.introspection.failed", endpoint=endpoint, status=response.status_code)
            raise IntrospectionUnavailableError(f"{endpoint}: HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError as err:
            raise IntrospectionUnavailableError(f"{endpoint}: not JSON") from err
        # RFC 7662 §2.2: "active" is required and boolean; anything else is no answer at all.
        active = body.get("active") if isinstance(body, dict) else None
        if not isinstance(active, bool):
            log.warning("auth.introspection.malformed", endpoint=endpoint)
            raise IntrospectionUnavailableError(f"{endpoint}: the answer has no boolean 'active'")
        return active
