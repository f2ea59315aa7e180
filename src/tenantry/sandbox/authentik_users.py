"""The sandbox's ``/core/users/{id}/``: read, change and delete one user, as authentik's UserViewSet does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tenantry.sandbox.authentik_auth import Caller, require_visible
from tenantry.sandbox.authentik_drf import ApiError, json_response, method_not_allowed, read_json_object, unrouted
from tenantry.sandbox.authentik_groups import ALL_METHODS, Handler
from tenantry.sandbox.authentik_store import Directory

_PERM = "authentik_core.{}_user"
_WRITABLE = ("username", "name", "is_active", "email", "attributes", "path", "type")
_TYPES = ("internal", "external", "service_account")


class UsersEndpoint:
    """One user by its integer pk. A pk that is not a number is DRF's bare "Not found." (the lookup cannot
    convert it); an unknown one is Django's "No User matches the given query."."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory

    def routes(self, prefix: str, guard: Callable[[Handler], Handler]) -> list[BaseRoute]:
        item = guard(self.item)

        async def routed(request: Request) -> Response:
            if "." in request.path_params["user_id"]:  # DRF's lookup is [^/.]+: no URL pattern matches
                return unrouted(request.method)
            return await item(request)

        return [Route(f"{prefix}/core/users/{{user_id}}/", routed, methods=ALL_METHODS)]

    async def item(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD", "PUT", "PATCH", "DELETE"):
            raise method_not_allowed(request.method)
        caller: Caller | None = request.state.caller
        require_visible(caller, _PERM.format("view"))
        assert caller is not None
        pk = self._lookup(request.path_params["user_id"])
        if request.method in ("GET", "HEAD"):
            return json_response(200, self.directory.serialize_user(pk))
        action = "delete" if request.method == "DELETE" else "change"
        if not caller.has(_PERM.format(action)):
            raise ApiError(403, {"detail": "You do not have permission to perform this action."})
        if request.method == "DELETE":
            self.directory.delete_user(pk)
            return Response(status_code=204)
        changes = self._validated(await read_json_object(request), partial=request.method == "PATCH")
        return json_response(200, self.directory.update_user(pk, changes))

    def _lookup(self, raw: str) -> int:
        try:
            pk = int(raw)
        except ValueError:
            raise ApiError(404, {"detail": "Not found."}) from None
        if not self.directory.has_user(pk):
            raise ApiError(404, {"detail": "No User matches the given query."})
        return pk

    @staticmethod
    def _validated(body: dict[str, Any], *, partial: bool) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        if not partial:
            errors |= {k: ["This field is required."] for k in ("username", "name") if k not in body}
        changes = {k: v for k, v in body.items() if k in _WRITABLE}
        if "is_active" in changes and not isinstance(changes["is_active"], bool):
            errors["is_active"] = ["Must be a valid boolean."]
        if "attributes" in changes and not isinstance(changes["attributes"], dict):
            errors["attributes"] = ["Value must be a dictionary, and not have any duplicate keys."]
        if "type" in changes and changes["type"] not in _TYPES:
            errors["type"] = [f'"{changes["type"]}" is not a valid choice.']
        if errors:
            raise ApiError(400, errors)
        return changes
