"""In-memory oCIS: LibreGraph project spaces (drives) and space membership, behind proxy-style auth.

Written from oCIS's graph service (services/graph/pkg/service/v0/drives.go, service.go), the decomposedfs
spaces code it calls, and the acceptance features (tests/acceptance/features/apiSpaces, apiSharingNg1):

* ``GET /me/drives`` lists the spaces the caller is a member of; ``GET /drives`` lists every space for a
  Space Admin (Drives.List) and is ``/me/drives`` for anyone else. A disabled space stays listed, marked
  trashed, for its managers (and Space Admins) only. v1.0 shows legacy role names, v1beta1 role ids.
* A Space Admin may create, rename, re-quota (project spaces only), disable, restore and purge any project
  space; a Manager may do all but set the quota; other members may read. What a caller may not touch is a
  404, as upstream hides it; a quota change without the permission is a 403.
* Names are not unique; a request without valid credentials gets a bare 401 (the proxy answers first).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Collection, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tenantry.sandbox.faults import SandboxControls
from tenantry.sandbox.ocis_auth import Principal, authenticate, user_id_for
from tenantry.sandbox.ocis_bodies import parse_bool_header, parse_create_body, parse_update_body, requested_quota
from tenantry.sandbox.ocis_errors import (
    GraphError,
    UnauthorizedError,
    drive_not_found,
    graph_error_response,
    http_error_response,
    unauthorized_response,
)
from tenantry.sandbox.ocis_members import SpaceMembers
from tenantry.sandbox.ocis_model import MANAGER, SPACE_EDITOR, Grant, Space, default_alias, rfc3339
from tenantry.sandbox.ocis_query import DriveQuery, parse_drive_query

__all__ = ["OcisSandbox", "user_id_for"]


class _StripSlashes:
    """chi's ``middleware.StripSlashes``, which Graph's router uses: ``/drives/`` is ``/drives``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and len(path) > 1 and path.endswith("/"):
            scope = {**scope, "path": path.rstrip("/") or "/"}
        await self.app(scope, receive, send)


class OcisSandbox(SpaceMembers):
    """An oCIS Graph service kept in memory, wrapped in :class:`SandboxControls` (``.app``, ``.controls``).

    ``space_admins`` hold the Space Admin role; everyone else authenticated is an ordinary User.
    ``free_bytes`` is the free disk space an unlimited quota reports as ``remaining``.
    """

    def __init__(
        self,
        *,
        app_tokens: Mapping[str, str] | None = None,
        bearer_validator: Callable[[str], str | None] | None = None,
        space_admins: Collection[str] = (),
        default_quota: int = 1_000_000_000,
        max_quota: int | None = None,
        free_bytes: int = 100 * 1024**3,
        public_url: str = "https://ocis.localhost",
        users: Mapping[str, str] | None = None,
        groups: Mapping[str, str] | None = None,
    ) -> None:
        self.app_tokens = dict(app_tokens or {})
        self.bearer_validator = bearer_validator
        self.space_admins = frozenset(space_admins)
        self.default_quota = default_quota
        self.max_quota = max_quota
        self.free_bytes = free_bytes
        self.public_url = public_url.rstrip("/")
        self.users: dict[str, str] = dict(users or {})
        self.groups: dict[str, str] = dict(groups or {})
        for username in (*self.app_tokens, *self.space_admins):
            self.users.setdefault(user_id_for(username), username)
        self._spaces: dict[str, Space] = {}  # by drive id
        self._by_type: dict[str, dict[str, Space]] = {}  # by drive type, then drive id; both in creation order
        self._lock = threading.RLock()
        graph = Starlette(
            routes=[
                Route("/graph/v1.0/me", self._me, methods=["GET"]),
                Route("/graph/v1.0/me/drives", self._my_drives, methods=["GET"]),
                Route("/graph/v1beta1/me/drives", self._my_drives_beta, methods=["GET"]),
                Route("/graph/v1.0/drives", self._all_drives, methods=["GET"]),
                Route("/graph/v1beta1/drives", self._all_drives_beta, methods=["GET"]),
                Route("/graph/v1.0/drives", self._create_drive, methods=["POST"]),
                Route("/graph/v1.0/drives/{drive_id}", self._get_drive, methods=["GET"]),
                Route("/graph/v1.0/drives/{drive_id}", self._update_drive, methods=["PATCH"]),
                Route("/graph/v1.0/drives/{drive_id}", self._delete_drive, methods=["DELETE"]),
                *self.member_routes(),
            ],
            exception_handlers={
                GraphError: graph_error_response,
                UnauthorizedError: unauthorized_response,
                HTTPException: http_error_response,
            },
        )
        self.controls = SandboxControls(_StripSlashes(graph), name="ocis")
        self.app = self.controls

    # -- out-of-band helpers ----------------------------------------------------------------------------
    def add_space(
        self,
        name: str,
        description: str | None = None,
        quota: int | None = None,
        *,
        drive_type: str = "project",
        manager: str | None = None,
    ) -> dict[str, Any]:
        """Create a space without going through the API; ``manager`` (a username) gets the Manager role."""
        space = Space(
            space_id=str(uuid.uuid4()),
            name=name,
            drive_type=drive_type,
            alias=default_alias(drive_type, name),
            quota=self.default_quota if quota is None else quota,
            description=description,
        )
        if manager is not None:
            grant = Grant("user", user_id_for(manager), manager, MANAGER)
            space.grants[grant.permission_id] = grant
        with self._lock:
            self._store(space)
            return self._drive(space)

    def delete_space(self, drive_id: str) -> None:
        """Purge a space out of band, whatever its state; KeyError when unknown."""
        with self._lock:
            self._forget(self._spaces[drive_id])

    def disable_space(self, drive_id: str) -> None:
        """Disable a space out of band (as an operator in the web UI would)."""
        with self._lock:
            space = self._spaces[drive_id]
            space.disabled = True
            space.touch()

    def set_usage(self, drive_id: str, used: int) -> None:
        """Pretend ``used`` bytes are stored in the space, to exercise quota states."""
        with self._lock:
            self._spaces[drive_id].used = used

    def spaces(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self._drive(s) for s in self._spaces.values()]

    def get_space(self, drive_id: str) -> dict[str, Any] | None:
        with self._lock:
            space = self._spaces.get(drive_id)
            return None if space is None else self._drive(space)

    def permissions(self, drive_id: str) -> list[dict[str, Any]]:
        """The v1beta1 permissions of a space's root; KeyError when unknown."""
        with self._lock:
            return [g.as_permission() for g in self._spaces[drive_id].grants.values()]

    def _drive(self, space: Space, *, unified_roles: bool = False) -> dict[str, Any]:
        return space.as_drive(self.public_url, unified_roles=unified_roles, free_bytes=self.free_bytes)

    def _rendered(self, space: Space, *, unified_roles: bool = False) -> bytes:
        return space.rendered(self.public_url, unified_roles=unified_roles, free_bytes=self.free_bytes)

    def _store(self, space: Space) -> None:
        self._spaces[space.drive_id] = space
        self._by_type.setdefault(space.drive_type, {})[space.drive_id] = space

    def _forget(self, space: Space) -> None:
        del self._spaces[space.drive_id]
        same_type = self._by_type[space.drive_type]
        del same_type[space.drive_id]
        if not same_type:
            del self._by_type[space.drive_type]

    # -- auth -------------------------------------------------------------------------------------------
    def _authenticate(self, request: Request) -> Principal:
        who = authenticate(
            request, app_tokens=self.app_tokens, bearer_validator=self.bearer_validator, space_admins=self.space_admins
        )
        with self._lock:
            self.users.setdefault(who.user_id, who.username)
        return who

    def _visible(self, who: Principal, space: Space, *, unrestricted: bool) -> bool:
        """Whether a listing (or a lookup by id, which is unrestricted) shows ``space`` to the caller."""
        return (unrestricted and who.space_admin) or space.listed_for(who.user_id)

    # -- drives -----------------------------------------------------------------------------------------
    async def _me(self, request: Request) -> Response:
        who = self._authenticate(request)
        return JSONResponse({"id": who.user_id, "displayName": who.username, "onPremisesSamAccountName": who.username})

    async def _my_drives(self, request: Request) -> Response:
        return self._list(request, unified_roles=False, unrestricted=False)

    async def _my_drives_beta(self, request: Request) -> Response:
        return self._list(request, unified_roles=True, unrestricted=False)

    async def _all_drives(self, request: Request) -> Response:
        return self._list(request, unified_roles=False, unrestricted=True)

    async def _all_drives_beta(self, request: Request) -> Response:
        return self._list(request, unified_roles=True, unrestricted=True)

    def _list(self, request: Request, *, unified_roles: bool, unrestricted: bool) -> Response:
        who = self._authenticate(request)
        query = parse_drive_query(request.query_params.multi_items())
        with self._lock:
            spaces = [s for s in self._candidates(query) if self._visible(who, s, unrestricted=unrestricted)]
            if query.order == "name":
                spaces.sort(key=lambda s: s.name.lower(), reverse=query.descending)
            elif query.order is not None:
                spaces.sort(key=lambda s: rfc3339(s.modified), reverse=query.descending)
            # Each drive's JSON is kept rendered; the answer joins them, in one copy, as JSONResponse writes it.
            parts = [self._rendered(s, unified_roles=unified_roles) for s in spaces] or [b""]
            parts[0] = b'{"value":[' + parts[0]
            parts[-1] += b"]}"
        return Response(b",".join(parts), media_type="application/json")

    def _candidates(self, query: DriveQuery) -> Collection[Space]:
        """The spaces the listing's filter keeps, in creation order, from the index it names."""
        if query.prop == "id":
            space = self._spaces.get(query.value or "")
            return () if space is None else (space,)
        if query.prop == "driveType":
            return self._by_type.get(query.value or "", {}).values()
        return self._spaces.values()

    async def _create_drive(self, request: Request) -> Response:
        who = self._authenticate(request)
        if not who.space_admin:
            raise GraphError(403, "notAllowed", "insufficient permissions to create a space.")
        name, fields = parse_create_body(await request.body())
        drive_type = fields.get("driveType") or "project"
        if drive_type != "project":
            raise GraphError(400, "invalidRequest", "drives of this type cannot be created via this api")
        quota = requested_quota(fields)
        total = quota if quota is not None and quota >= 0 else self.default_quota
        if self.max_quota and total > self.max_quota:
            message = "error: bad request: decompsedFS: requested quota is higher than allowed"
            raise GraphError(400, "invalidRequest", message)
        space = Space(
            space_id=str(uuid.uuid4()),
            name=name,
            drive_type=drive_type,
            alias=fields.get("driveAlias") or default_alias(drive_type, name),
            quota=total,
            description=fields.get("description"),
        )
        creator = Grant("user", who.user_id, who.username, MANAGER)
        space.grants[creator.permission_id] = creator
        with self._lock:
            self._store(space)
            return JSONResponse(self._drive(space), status_code=201)

    async def _get_drive(self, request: Request) -> Response:
        who = self._authenticate(request)
        with self._lock:
            space = self._spaces.get(request.path_params["drive_id"])
            if space is None or not self._visible(who, space, unrestricted=True):
                raise drive_not_found()
            return Response(self._rendered(space), media_type="application/json")

    async def _update_drive(self, request: Request) -> Response:
        who = self._authenticate(request)
        name, fields = parse_update_body(await request.body())
        restore = parse_bool_header(request.headers.get("restore"))
        quota = requested_quota(fields)
        drive_id = request.path_params["drive_id"]
        with self._lock:
            space = self._spaces.get(drive_id)
            if quota is not None:
                quota = self._check_quota_change(who, space, quota)
            if space is None:
                raise drive_not_found()
            changes = {k: v for k, v in (("name", name), ("quota", quota)) if v is not None}
            if fields.get("description") is not None:
                changes["description"] = fields["description"]
            if fields.get("driveAlias"):
                changes["alias"] = fields["driveAlias"]
            self._check_update_allowed(who, space, set(changes), restore=restore)
            for attribute, value in changes.items():
                setattr(space, attribute, value)
            if restore:
                space.disabled = False
            space.touch()
            return JSONResponse(self._drive(space))

    def _check_quota_change(self, who: Principal, space: Space | None, total: int) -> int:
        """Graph's ``canSetSpaceQuota`` and decomposedfs's limit; the value to store (negative: unlimited)."""
        # Graph looks the id up among project spaces; anything else counts as a personal space, whose quota
        # needs a permission a Space Admin does not have.
        is_project = (
            space is not None and space.drive_type == "project" and self._visible(who, space, unrestricted=True)
        )
        if not (who.space_admin and is_project):
            raise GraphError(403, "notAllowed", "user is not allowed to set the space quota")
        if self.max_quota and (total < 0 or total > self.max_quota):
            raise GraphError(400, "notAllowed", "decompsedFS: requested quota is higher than allowed")
        if self.max_quota and total == 0:
            return self.max_quota
        return total

    def _check_update_allowed(self, who: Principal, space: Space, changes: set[str], *, restore: bool) -> None:
        """decomposedfs ``UpdateStorageSpace``: what a non-manager may change; a refusal reads as a 404."""
        role = space.role_of(who.user_id)
        if not changes and not restore and role is None:
            raise drive_not_found()
        if role == MANAGER or who.space_admin:
            return
        # An editor may set the alias; the name and description need ManageSpaceProperties, restoring needs
        # Drives.ReadWriteEnabled (both Space Admin permissions).
        guarded = {"name", "description"} if role == SPACE_EDITOR else {"name", "description", "alias"}
        if changes & guarded or restore:
            raise drive_not_found()

    async def _delete_drive(self, request: Request) -> Response:
        who = self._authenticate(request)
        purge = parse_bool_header(request.headers.get("purge"))
        with self._lock:
            space = self._spaces.get(request.path_params["drive_id"])
            if space is None:
                raise drive_not_found()
            # decomposedfs canDeleteSpace: a Manager may disable and purge; a Space Admin holds both
            # Drives.ReadWriteEnabled (disable) and Drives.DeleteProject (purge); personal spaces need more.
            allowed = space.drive_type == "project" and (space.is_manager(who.user_id) or who.space_admin)
            if not allowed:
                raise drive_not_found()
            if purge:
                if not space.disabled:
                    raise GraphError(400, "invalidRequest", "error: bad request: can't purge enabled space")
                self._forget(space)
            else:
                space.disabled = True
                space.touch()
        return Response(status_code=204)
