"""The authentik sandbox: an in-memory ``/api/v3`` groups API behind Bearer auth, inside fault controls.

Like a new authentik install it starts with the superuser group ``authentik Admins`` (member ``akadmin``).
Anything the server fails on unhandled, whether the create race or an injected ``crash`` fault, answers as
authentik's crash page does: 500 HTML to GET, and 405 with an empty body and ``Allow: GET, HEAD, OPTIONS``
to a write.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tenantry.sandbox.authentik_auth import TokenAuthentication
from tenantry.sandbox.authentik_drf import ApiError, crash_parts, unrouted
from tenantry.sandbox.authentik_groups import ALL_METHODS, GroupsEndpoint, Handler
from tenantry.sandbox.authentik_store import Directory, GroupRecord, canonical_uuid
from tenantry.sandbox.authentik_users import UsersEndpoint
from tenantry.sandbox.faults import SandboxControls

API_PREFIX = "/api/v3"


class AuthentikSandbox:
    """authentik's ``/api/v3/core/groups/`` API, in memory.

    ``api_tokens`` are the Bearer tokens of superusers; ``permissions`` maps more tokens to the only
    global permissions their users hold (``{"t": set()}``: a valid token of a user who may do nothing);
    ``accept_token`` may accept more (OAuth access tokens issued by the sandbox's OIDC issuer, mounted
    through ``extra_routes``). ``insert_delay`` is the pause between the name-uniqueness check and the
    write, widening the window in which two concurrent creates of one name both pass the check and the
    second crashes on the database's unique constraint.
    """

    def __init__(
        self,
        api_tokens: Collection[str],
        *,
        permissions: Mapping[str, Collection[str]] | None = None,
        accept_token: Callable[[str], bool] | None = None,
        extra_routes: Sequence[BaseRoute] = (),
        default_page_size: int = 20,
        max_page_size: int = 100,
        insert_delay: float = 0.0,
    ) -> None:
        self.authentication = TokenAuthentication(api_tokens, permissions or {}, accept_token)
        self.directory = Directory()
        self.directory.bootstrap()
        self._groups = GroupsEndpoint(
            self.directory, default_page_size=default_page_size, max_page_size=max_page_size, insert_delay=insert_delay
        )
        routes: list[BaseRoute] = [
            *self._groups.routes(API_PREFIX, self._guard),
            *UsersEndpoint(self.directory).routes(API_PREFIX, self._guard),
            # Any other API path, one without its trailing slash included, reaches Django's 404 view:
            # authentik sets APPEND_SLASH = False, so nothing redirects.
            Route(f"{API_PREFIX}/{{rest:path}}", _unrouted, methods=ALL_METHODS),
            *extra_routes,
        ]
        self.controls = SandboxControls(Starlette(routes=routes), name="authentik", crash_response=crash_parts)
        self.app = self.controls

    @property
    def insert_delay(self) -> float:
        return self._groups.insert_delay

    @insert_delay.setter
    def insert_delay(self, seconds: float) -> None:
        self._groups.insert_delay = seconds

    # -- authentication -------------------------------------------------------------------------------
    def _guard(self, handler: Handler) -> Handler:
        """Authenticate (the caller lands in ``request.state.caller``, None when anonymous), then run
        ``handler``; API errors become DRF-shaped JSON responses."""

        async def guarded(request: Request) -> Response:
            try:
                request.state.caller = self.authentication.caller(request)
                return await handler(request)
            except ApiError as err:
                return err.response()

        return guarded

    # -- out-of-band helpers for tests and the demo ---------------------------------------------------
    def add_group(
        self, name: str, attributes: Mapping[str, Any] | None = None, *, is_superuser: bool = False
    ) -> dict[str, Any]:
        """Create a group as an administrator would in the UI; the API's uniqueness rule still holds."""
        with self.directory.lock:
            if self.directory.group_named(name) is not None:
                raise ValueError(f"a group named {name!r} already exists")
            record = self.directory.insert_group(
                {"name": name, "attributes": dict(attributes or {}), "is_superuser": is_superuser}
            )
            return self.directory.serialize_group(record)

    def update_group(
        self,
        pk: str,
        *,
        name: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        is_superuser: bool | None = None,
    ) -> dict[str, Any]:
        """Edit a group out of band (drift); only the given fields change."""
        with self.directory.lock:
            record = self._record(pk)
            fields: dict[str, Any] = {}
            if name is not None:
                owner = self.directory.group_named(name)
                if owner is not None and owner is not record:
                    raise ValueError(f"a group named {name!r} already exists")
                fields["name"] = name
            if attributes is not None:
                fields["attributes"] = dict(attributes)
            if is_superuser is not None:
                fields["is_superuser"] = is_superuser
            self.directory.update_group(record, fields)
            return self.directory.serialize_group(record)

    def delete_group(self, pk: str) -> None:
        """Delete a group out of band; ``KeyError`` if there is none with that pk."""
        with self.directory.lock:
            self.directory.delete_group(self._record(pk).pk)

    def get_group(self, pk: str) -> dict[str, Any] | None:
        """The group as the API would return it by default, or None."""
        key = canonical_uuid(pk)
        record = self.directory.group(key) if key is not None else None
        return None if record is None else self.directory.serialize_group(record)

    def groups(self, *, builtin: bool = False) -> list[dict[str, Any]]:
        """Every group as the API would return it by default, ordered by name; the ones a new install starts
        with (``authentik Admins``) only when ``builtin`` is set. The API always lists them all."""
        with self.directory.lock:
            records = [g for g in self.directory.ordered_groups() if builtin or g.pk not in self.directory.builtin]
            return [self.directory.serialize_group(r) for r in records]

    def add_user(
        self,
        username: str,
        *,
        name: str = "",
        email: str = "",
        attributes: Mapping[str, Any] | None = None,
        groups: Sequence[str] = (),
    ) -> int:
        """Create a user (with ``attributes``, a member of ``groups`` by pk) as an administrator would."""
        with self.directory.lock:
            pk = self.directory.add_user(username, name=name, email=email)
            self.directory.users[pk]["attributes"] = dict(attributes or {})
            for group in groups:
                self.directory.add_member(self._record(group), pk)
            return pk

    def user(self, pk: int) -> dict[str, Any]:
        """A user as ``/core/users/{id}/`` answers it."""
        return self.directory.serialize_user(pk)

    def _record(self, pk: str) -> GroupRecord:
        key = canonical_uuid(pk)
        record = self.directory.group(key) if key is not None else None
        if record is None:
            raise KeyError(pk)
        return record


async def _unrouted(request: Request) -> Response:
    return unrouted(request.method)
