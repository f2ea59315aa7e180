"""Space membership in the sandbox oCIS: the v1beta1 ``/drives/{id}/root/invite`` and ``/root/permissions`` routes.

From Graph's api_driveitem_permissions.go and base.go, reva's space-grant rules and apiSharingNg1's
removeAccessToDrive.feature:

* The space is looked up as its caller may list it (``utils.GetSpace``): a space the caller is not a member
  of is a 404, a Space Admin's unrelated project included; a disabled space is a 404 too, since its root can
  no longer be read, even by its managers.
* Invites, role changes and removals apply to project spaces only (else 400 "unsupported space type"), and
  only a Manager may make them (else 403 ``accessDenied``).
* A space keeps at least one permanent Manager: removing the last one, taking away its role or giving it an
  expiration is a 403 (reva "Prevent last space manager from leaving", owncloud/reva#631).
* The roles a listing offers are those the caller's own role includes.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tenantry.sandbox.ocis_auth import Principal
from tenantry.sandbox.ocis_bodies import parse_invite_body, parse_permission_body
from tenantry.sandbox.ocis_errors import GraphError
from tenantry.sandbox.ocis_model import ALLOWED_ACTIONS, MANAGER, SPACE_ROLES, Grant, Space

_ROLES_KEY = "@libre.graph.permissions.roles.allowedValues"
_ACTIONS_KEY = "@libre.graph.permissions.actions.allowedValues"
_ROOT = "/graph/v1beta1/drives/{drive_id}/root"


class SpaceMembers:
    """The membership routes; mixed into the sandbox, whose state (spaces, directory, lock) they use."""

    _spaces: dict[str, Space]
    _lock: AbstractContextManager[Any]
    users: dict[str, str]
    groups: dict[str, str]

    def _authenticate(self, request: Request) -> Principal:
        raise NotImplementedError

    def member_routes(self) -> list[BaseRoute]:
        return [
            Route(f"{_ROOT}/invite", self._invite, methods=["POST"]),
            Route(f"{_ROOT}/permissions", self._list_permissions, methods=["GET"]),
            Route(f"{_ROOT}/permissions/{{perm_id}}", self._update_permission, methods=["PATCH"]),
            Route(f"{_ROOT}/permissions/{{perm_id}}", self._delete_permission, methods=["DELETE"]),
        ]

    def _member_space(self, who: Principal, drive_id: str, *, listing: bool = False) -> Space:
        space = self._spaces.get(drive_id)
        if space is None or space.role_of(who.user_id) is None:
            raise GraphError(404, "itemNotFound", "space not found")
        if space.drive_type not in ({"project", "personal", "virtual"} if listing else {"project"}):
            raise GraphError(400, "invalidRequest", "unsupported space type")
        if space.disabled:
            raise GraphError(404, "itemNotFound", f"error: not found: {space.space_id}")
        return space

    @staticmethod
    def _require_manager(space: Space, who: Principal) -> None:
        if not space.is_manager(who.user_id):
            raise GraphError(403, "accessDenied", "permission denied")

    @staticmethod
    def _keep_a_manager(space: Space, grant: Grant, *, stays_permanent_manager: bool) -> None:
        """Refuse a change that would leave the space without a permanent Manager."""
        others = [g for g in space.grants.values() if g is not grant and g.permanent_manager]
        if grant.permanent_manager and not stays_permanent_manager and not others:
            raise GraphError(403, "accessDenied", "the space must have at least one manager")

    async def _invite(self, request: Request) -> Response:
        who = self._authenticate(request)
        invite = parse_invite_body(await request.body())
        with self._lock:
            space = self._member_space(who, request.path_params["drive_id"])
            directory = self.groups if invite.recipient_type == "group" else self.users
            if invite.object_id not in directory:
                raise GraphError(400, "invalidRequest", "itemNotFound: not found")
            self._require_manager(space, who)
            grant = Grant(
                invite.recipient_type, invite.object_id, directory[invite.object_id], invite.role, invite.expiration
            )
            if grant.permission_id in space.grants:
                raise GraphError(409, "nameAlreadyExists", "the recipient is already a member of this space")
            space.grants[grant.permission_id] = grant
            space.touch()
            inviter = {"id": who.user_id, "displayName": self.users.get(who.user_id, who.username)}
            # Upstream answers 200 (not the 201 a create would suggest) with a one-element collection.
            return JSONResponse({"value": [grant.as_invited(inviter)]})

    async def _list_permissions(self, request: Request) -> Response:
        who = self._authenticate(request)
        roles_only = request.query_params.get("$select") == _ROLES_KEY
        with self._lock:
            space = self._member_space(who, request.path_params["drive_id"], listing=True)
            own = SPACE_ROLES[space.role_of(who.user_id) or MANAGER].weight
            out: dict[str, Any] = {_ROLES_KEY: [r.as_json() for r in SPACE_ROLES.values() if r.weight <= own]}
            if not roles_only:
                out[_ACTIONS_KEY] = list(ALLOWED_ACTIONS)
                out["value"] = [g.as_permission() for g in space.grants.values()]
        return JSONResponse(out)

    async def _update_permission(self, request: Request) -> Response:
        who = self._authenticate(request)
        update = parse_permission_body(await request.body())
        with self._lock:
            space = self._member_space(who, request.path_params["drive_id"])
            grant = space.grants.get(request.path_params["perm_id"])
            if grant is None:
                raise GraphError(404, "itemNotFound", "permission not found")
            self._require_manager(space, who)
            role = update.role or grant.role
            expiration = update.expiration if update.expiration_sent else grant.expiration
            self._keep_a_manager(space, grant, stays_permanent_manager=role == MANAGER and expiration is None)
            grant.role, grant.expiration = role, expiration
            space.touch()
            return JSONResponse(grant.as_permission())

    async def _delete_permission(self, request: Request) -> Response:
        who = self._authenticate(request)
        with self._lock:
            space = self._member_space(who, request.path_params["drive_id"])
            grant = space.grants.get(request.path_params["perm_id"])
            if grant is None:
                raise GraphError(404, "itemNotFound", "permission not found")
            self._require_manager(space, who)
            self._keep_a_manager(space, grant, stays_permanent_manager=False)
            del space.grants[grant.permission_id]
            space.touch()
        return Response(status_code=204)
