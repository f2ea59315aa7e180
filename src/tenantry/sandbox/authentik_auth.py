"""authentik's API token authentication and its permission answers, as the sandbox applies them."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from starlette.requests import Request

from tenantry.sandbox.authentik_drf import ApiError

# DRF's NotAuthenticated and PermissionDenied, and authentik's TokenAuthentication refusal. authentik answers
# 403 rather than 401 to all three: its token authentication names no WWW-Authenticate challenge.
NO_CREDENTIALS = {"detail": "Authentication credentials were not provided."}
NO_PERMISSION = {"detail": "You do not have permission to perform this action."}
BAD_TOKEN = {"detail": "Token invalid/expired"}


@dataclass(frozen=True)
class Caller:
    """The user behind an accepted token: a superuser holds every permission, others only ``permissions``
    (global permissions such as ``authentik_core.view_group``; the sandbox has no per-object ones)."""

    permissions: frozenset[str] = frozenset()
    superuser: bool = False

    def has(self, permission: str) -> bool:
        return self.superuser or permission in self.permissions


class TokenAuthentication:
    """``Authorization: Bearer <token>`` as ``authentik/api/authentication.py`` reads it.

    A header without a space or with another scheme is no credentials at all (the request is anonymous);
    a Bearer token nobody issued is ``Token invalid/expired``.
    """

    def __init__(
        self,
        api_tokens: Collection[str],
        permissions: Mapping[str, Collection[str]],
        accept_token: Callable[[str], bool] | None,
    ) -> None:
        self.api_tokens = frozenset(api_tokens)
        self.permissions = {token: frozenset(perms) for token, perms in permissions.items()}
        self.accept_token = accept_token

    def caller(self, request: Request) -> Caller | None:
        """The caller, None for an anonymous request; raises the 403 for a token nobody issued."""
        header = request.headers.get("authorization", "").strip()
        if " " not in header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        if token in self.api_tokens:
            return Caller(superuser=True)
        if token in self.permissions:
            return Caller(self.permissions[token])
        if self.accept_token is not None and self.accept_token(token):
            return Caller(superuser=True)
        raise ApiError(403, BAD_TOKEN)


def require_model_permission(caller: Caller | None, permission: str | None) -> Caller:
    """DRF's ``has_permission`` for a collection request: anonymous callers are not authenticated, others
    need ``permission`` (None: any authenticated caller)."""
    if caller is None:
        raise ApiError(403, NO_CREDENTIALS)
    if permission is not None and not caller.has(permission):
        raise ApiError(403, NO_PERMISSION)
    return caller


def require_visible(caller: Caller | None, view_permission: str) -> Caller:
    """authentik's ``ObjectFilter``: a caller who may view no object of the model is refused outright,
    before any lookup (an anonymous caller too: object requests skip the authentication check)."""
    if caller is None or not caller.has(view_permission):
        raise ApiError(403, NO_PERMISSION)
    return caller
