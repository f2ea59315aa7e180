"""The sandbox oCIS proxy's authentication: app tokens (Basic) or a bearer token, and who the caller is."""

from __future__ import annotations

import base64
import binascii
import hmac
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from starlette.requests import Request

from tenantry.sandbox.ocis_errors import UnauthorizedError

# Users the sandbox authenticates get a stable id derived from their username.
_USER_NAMESPACE = uuid.UUID("8f0c1d2e-5b7a-4c1e-9d3f-2a6b4e8c0f17")


def user_id_for(username: str) -> str:
    """The oCIS user id the sandbox gives an authenticated username."""
    return str(uuid.uuid5(_USER_NAMESPACE, username))


@dataclass(frozen=True)
class Principal:
    username: str
    user_id: str
    space_admin: bool


def authenticate(
    request: Request,
    *,
    app_tokens: Mapping[str, str],
    bearer_validator: Callable[[str], str | None] | None,
    space_admins: Collection[str],
) -> Principal:
    """Who sent ``request``; :class:`UnauthorizedError` (a bare 401, as the proxy answers) when nobody valid."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    username: str | None = None
    if scheme.lower() == "basic":
        username = _check_app_token(credentials.strip(), app_tokens)
    elif scheme.lower() == "bearer" and bearer_validator is not None and credentials.strip():
        username = bearer_validator(credentials.strip())
    if not username:
        raise UnauthorizedError
    return Principal(username, user_id_for(username), username in space_admins)


def _check_app_token(credentials: str, app_tokens: Mapping[str, str]) -> str | None:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, token = decoded.partition(":")
    expected = app_tokens.get(username)
    if not sep or expected is None or not hmac.compare_digest(expected.encode(), token.encode()):
        return None
    return username
