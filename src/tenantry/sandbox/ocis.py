"""In-memory oCIS: LibreGraph project spaces (drives) and space membership, behind proxy-style auth.

Behaviour follows the upstream notes rather than only the LibreGraph document where they differ: invites
answer 200, names are not unique, a single ``eq`` filter on an unsupported property is ignored, and a
request without valid credentials gets a bare 401 with an empty body (the proxy answers before Graph).
A second disable of an already disabled space answers 204 again (upstream leaves it open; treating it as
a no-op keeps teardown idempotent).
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

from tenantry.sandbox.faults import SandboxControls
from tenantry.sandbox.ocis_auth import Principal, authenticate, user_id_for
from tenantry.sandbox.ocis_model import (
    ALLOWED_ACTIONS,
    MANAGER,
    SPACE_ROLES,
    Grant,
    GraphError,
    Space,
    UnauthorizedError,
    default_alias,
    drive_not_found,
    graph_error_response,
    http_error_response,
    invalid_body,
    parse_bool_header,
    parse_drive_body,
    parse_drive_filter,
    parse_expiration,
    parse_json_object,
    parse_order_by,
    parse_single_role,
    requested_quota,
    rfc3339,
    unauthorized_response,
    validate_space_name,
)

_ROLES_KEY = "@libre.graph.permissions.roles.allowedValues"
_ACTIONS_KEY = "@libre.graph.permissions.actions.allowedValues"


class OcisSandbox:
    """An oCIS Graph service kept in memory, wrapped in :class:`SandboxControls` (``.app``, ``.controls``)."""

    def __init__(
        self,
        *,
        app_tokens: Mapping[str, str] | None = None,
        bearer_validator: Callable[[str], str | None] | None = None,
        space_admins: Collection[str] = (),
        default_quota: int = 1_000_000_000,
        max_quota: int | None = None,
        public_url: str = "https://ocis.localhost",
        users: Mapping[str, str] | None = None,
        groups: Mapping[str, str] | None = None,
    ) -> None:
        self.app_tokens = dict(app_tokens or {})
        self.bearer_validator = bearer_validator
        self.space_admins = frozenset(space_admins)
        self.default_quota = default_quota
        self.max_quota = max_quota
        self.public_url = public_url.rstrip("/")
        self.users: dict[str, str] = dict(users or {})
        self.groups: dict[str, str] = dict(groups or {})
        for username in (*self.app_tokens, *self.space_admins):
            self.users.setdefault(user_id_for(username), username)
        self._spaces: dict[str, Space] = {}
        self._lock = threading.RLock()
        graph = Starlette(
            routes=[
                Route("/graph/v1.0/me", self._me, methods=["GET"]),
                Route("/graph/v1.0/drives", self._list_drives, methods=["GET"]),
                Route("/graph/v1beta1/drives", self._list_drives_beta, methods=["GET"]),
                Route("/graph/v1.0/drives", self._create_drive, methods=["POST"]),
                Route("/graph/v1.0/drives/{drive_id}", self._get_drive, methods=["GET"]),
                Route("/graph/v1.0/drives/{drive_id}", self._update_drive, methods=["PATCH"]),
                Route("/graph/v1.0/drives/{drive_id}", self._delete_drive, methods=["DELETE"]),
                Route("/graph/v1beta1/drives/{drive_id}/root/invite", self._invite, methods=["POST"]),
                Route("/graph/v1beta1/drives/{drive_id}/root/permissions", self._list_permissions, methods=["GET"]),
                Route(
                    "/graph/v1beta1/drives/{drive_id}/root/permissions/{perm_id}",
                    self._update_permission,
                    methods=["PATCH"],
                ),
                Route(
                    "/graph/v1beta1/drives/{drive_id}/root/permissions/{perm_id}",
                    self._delete_permission,
                    methods=["DELETE"],
                ),
            ],
            exception_handlers={
                GraphError: graph_error_response,
                UnauthorizedError: unauthorized_response,
                HTTPException: http_error_response,
            },
        )
        self.controls = SandboxControls(graph, name="ocis")
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
            quota_total=self.default_quota if quota is None else quota,
            description=description,
        )
        if manager is not None:
            grant = Grant("user", user_id_for(manager), manager, MANAGER)
            space.grants[grant.permission_id] = grant
        with self._lock:
            self._spaces[space.drive_id] = space
            return space.as_drive(self.public_url)

    def delete_space(self, drive_id: str) -> None:
        """Purge a space out of band, whatever its state; KeyError when unknown."""
        with self._lock:
            del self._spaces[drive_id]

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
            return [s.as_drive(self.public_url) for s in self._spaces.values()]

    def get_space(self, drive_id: str) -> dict[str, Any] | None:
        with self._lock:
            space = self._spaces.get(drive_id)
            return None if space is None else space.as_drive(self.public_url)

    def permissions(self, drive_id: str) -> list[dict[str, Any]]:
        """The v1beta1 permissions of a space's root; KeyError when unknown."""
        with self._lock:
            return [g.as_permission() for g in self._spaces[drive_id].grants.values()]

    # -- auth -------------------------------------------------------------------------------------------
    def _authenticate(self, request: Request) -> Principal:
        who = authenticate(
            request, app_tokens=self.app_tokens, bearer_validator=self.bearer_validator, space_admins=self.space_admins
        )
        with self._lock:
            self.users.setdefault(who.user_id, who.username)
        return who

    # -- lookups ----------------------------------------------------------------------------------------
    def _visible_space(self, who: Principal, drive_id: str) -> Space:
        """The space if the caller may see it; hidden and missing spaces alike are a 404."""
        space = self._spaces.get(drive_id)
        if space is None or not (who.space_admin or f"u:{who.user_id}" in space.grants):
            raise drive_not_found()
        return space

    def _manageable_space(self, who: Principal, drive_id: str) -> Space:
        """A visible space the caller may change (Space Admin or Manager); otherwise a 404 like upstream."""
        space = self._visible_space(who, drive_id)
        if not (who.space_admin or _is_manager(space, who)):
            raise drive_not_found()
        return space

    def _member_space(self, who: Principal, drive_id: str) -> Space:
        """A project space whose members the caller (a Manager of it) may change."""
        space = self._visible_space(who, drive_id)
        if space.drive_type != "project":
            raise GraphError(400, "invalidRequest", "unsupported space type")
        if not _is_manager(space, who):
            raise GraphError(403, "accessDenied", "permission denied: only space managers manage members")
        return space

    # -- drives -----------------------------------------------------------------------------------------
    async def _me(self, request: Request) -> Response:
        who = self._authenticate(request)
        return JSONResponse({"id": who.user_id, "displayName": who.username, "onPremisesSamAccountName": who.username})

    async def _list_drives(self, request: Request) -> Response:
        return self._list(request, unified_roles=False)

    async def _list_drives_beta(self, request: Request) -> Response:
        return self._list(request, unified_roles=True)

    def _list(self, request: Request, *, unified_roles: bool) -> Response:
        who = self._authenticate(request)
        wanted = parse_drive_filter(request.query_params.get("$filter"))
        order = parse_order_by(request.query_params.get("$orderby"))
        with self._lock:
            spaces = [s for s in self._spaces.values() if who.space_admin or f"u:{who.user_id}" in s.grants]
            if wanted is not None:
                prop, value = wanted
                spaces = [s for s in spaces if (s.drive_type if prop == "driveType" else s.drive_id) == value]
            if order is not None:
                prop, descending = order
                spaces.sort(key=lambda s: s.name if prop == "name" else rfc3339(s.modified), reverse=descending)
            value_list = [s.as_drive(self.public_url, unified_roles=unified_roles) for s in spaces]
        return JSONResponse({"value": value_list})

    async def _create_drive(self, request: Request) -> Response:
        who = self._authenticate(request)
        if not who.space_admin:
            raise GraphError(403, "notAllowed", "insufficient permissions to create a space.")
        body = parse_drive_body(await request.body())
        name = validate_space_name(body.get("name"))
        drive_type = body.get("driveType", "") or "project"
        if drive_type != "project":
            raise GraphError(400, "invalidRequest", "drives of this type cannot be created via this api")
        quota = requested_quota(body)
        total = quota if quota is not None and quota >= 0 else self.default_quota
        self._check_max_quota(total)
        space = Space(
            space_id=str(uuid.uuid4()),
            name=name,
            drive_type=drive_type,
            alias=body.get("driveAlias") or default_alias(drive_type, name),
            quota_total=total,
            description=body.get("description"),
        )
        creator = Grant("user", who.user_id, who.username, MANAGER)
        space.grants[creator.permission_id] = creator
        with self._lock:
            self._spaces[space.drive_id] = space
            return JSONResponse(space.as_drive(self.public_url), status_code=201)

    async def _get_drive(self, request: Request) -> Response:
        who = self._authenticate(request)
        with self._lock:
            space = self._visible_space(who, request.path_params["drive_id"])
            return JSONResponse(space.as_drive(self.public_url))

    async def _update_drive(self, request: Request) -> Response:
        who = self._authenticate(request)
        body = parse_drive_body(await request.body())
        restore = parse_bool_header(request.headers.get("restore"))
        name = validate_space_name(body["name"]) if "name" in body else None
        quota = requested_quota(body)
        with self._lock:
            space = self._manageable_space(who, request.path_params["drive_id"])
            if quota is not None:
                if not who.space_admin:
                    raise GraphError(403, "notAllowed", "user is not allowed to set the space quota")
                if quota < 0:
                    raise GraphError(400, "invalidRequest", "quota must not be negative")
                self._check_max_quota(quota)
                space.quota_total = quota
            if restore:
                space.disabled = False
            if name is not None:
                space.name = name
            if "description" in body:
                space.description = body["description"]
            if "driveAlias" in body:
                space.alias = body["driveAlias"]
            space.touch()
            return JSONResponse(space.as_drive(self.public_url))

    async def _delete_drive(self, request: Request) -> Response:
        who = self._authenticate(request)
        purge = parse_bool_header(request.headers.get("purge"))
        with self._lock:
            space = self._manageable_space(who, request.path_params["drive_id"])
            if purge:
                if not space.disabled:
                    raise GraphError(400, "invalidRequest", "error: bad request: can't purge enabled space")
                del self._spaces[space.drive_id]
            elif not space.disabled:
                space.disabled = True
                space.touch()
        return Response(status_code=204)

    def _check_max_quota(self, total: int) -> None:
        if self.max_quota is not None and total > self.max_quota:
            raise GraphError(400, "invalidRequest", "requested quota is higher than allowed")

    # -- membership -------------------------------------------------------------------------------------
    async def _invite(self, request: Request) -> Response:
        who = self._authenticate(request)
        body = parse_json_object(await request.body())
        with self._lock:
            space = self._member_space(who, request.path_params["drive_id"])
            grant = self._grant_from_invite(body)
            if grant.permission_id in space.grants:
                raise GraphError(409, "nameAlreadyExists", "the recipient is already a member of this space")
            space.grants[grant.permission_id] = grant
            space.touch()
            # Upstream answers 200 (not the 201 a create would suggest) with a one-element collection.
            return JSONResponse({"value": [grant.as_permission()]})

    def _grant_from_invite(self, body: dict[str, Any]) -> Grant:
        recipients = body.get("recipients")
        if not isinstance(recipients, list) or len(recipients) != 1 or not isinstance(recipients[0], dict):
            raise GraphError(400, "invalidRequest", "exactly one recipient must be given")
        if body.get("@libre.graph.permissions.actions") is not None:
            raise GraphError(400, "invalidRequest", "custom actions are not applicable to a space root")
        role = parse_single_role(body.get("roles"))
        expiration = parse_expiration(body.get("expirationDateTime"))
        recipient: dict[str, Any] = recipients[0]
        kind = recipient.get("@libre.graph.recipient.type", "user")
        object_id = recipient.get("objectId")
        if kind not in {"user", "group"}:
            raise GraphError(400, "invalidRequest", "recipient type must be user or group")
        if not isinstance(object_id, str) or not object_id:
            raise GraphError(400, "invalidRequest", "recipient objectId must not be empty")
        directory = self.users if kind == "user" else self.groups
        if object_id not in directory:
            raise GraphError(400, "invalidRequest", f"{kind} {object_id} not found")
        return Grant("user" if kind == "user" else "group", object_id, directory[object_id], role, expiration)

    async def _list_permissions(self, request: Request) -> Response:
        who = self._authenticate(request)
        selected = _selection(request.query_params.get("$select"))
        with self._lock:
            space = self._visible_space(who, request.path_params["drive_id"])
            out: dict[str, Any] = {
                _ROLES_KEY: [role.as_json() for role in SPACE_ROLES.values()],
                _ACTIONS_KEY: list(ALLOWED_ACTIONS),
                "value": [g.as_permission() for g in space.grants.values()],
            }
        if selected:
            out = {k: v for k, v in out.items() if k in selected}
        return JSONResponse(out)

    async def _update_permission(self, request: Request) -> Response:
        who = self._authenticate(request)
        body = parse_json_object(await request.body())
        if "roles" not in body and "expirationDateTime" not in body:
            raise invalid_body()
        role = parse_single_role(body["roles"]) if "roles" in body else None
        expiration = parse_expiration(body.get("expirationDateTime"))
        with self._lock:
            space = self._member_space(who, request.path_params["drive_id"])
            grant = space.grants.get(request.path_params["perm_id"])
            if grant is None:
                raise GraphError(404, "itemNotFound", "permission not found")
            if role is not None:
                grant.role = role
            if expiration is not None:
                grant.expiration = expiration
            space.touch()
            return JSONResponse(grant.as_permission())

    async def _delete_permission(self, request: Request) -> Response:
        who = self._authenticate(request)
        with self._lock:
            space = self._member_space(who, request.path_params["drive_id"])
            if space.grants.pop(request.path_params["perm_id"], None) is None:
                raise GraphError(404, "itemNotFound", "permission not found")
            space.touch()
        return Response(status_code=204)


def _is_manager(space: Space, who: Principal) -> bool:
    grant = space.grants.get(f"u:{who.user_id}")
    return grant is not None and grant.role == MANAGER


def _selection(select: str | None) -> set[str]:
    return {part.strip() for part in select.split(",") if part.strip()} if select else set()
