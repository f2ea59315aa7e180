"""The authentik sandbox's ``/core/groups/`` endpoints: filtered pages, CRUD, permissions and the create race.

Written from ``authentik/core/api/groups.py`` (GroupSerializer, GroupFilter, GroupViewSet), the permission
classes in ``authentik/rbac/`` and Django REST framework 3.17, the release authentik pins.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tenantry.sandbox.authentik_auth import NO_PERMISSION, Caller, require_model_permission, require_visible
from tenantry.sandbox.authentik_drf import (
    ApiError,
    FieldError,
    crashed,
    json_response,
    method_not_allowed,
    not_found,
    paginate,
    parse_bool,
    query_flags,
    read_json_object,
    unrouted,
)
from tenantry.sandbox.authentik_filters import GroupQuery
from tenantry.sandbox.authentik_store import GROUP_INCLUDE_DEFAULTS, Directory, GroupRecord, canonical_uuid

Handler = Callable[[Request], Awaitable[Response]]
# Every method reaches the handler so an unsupported one gets DRF's JSON 405 after authentication.
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_PERM = "authentik_core.{}_group"


class GroupsEndpoint:
    """``GET|POST /core/groups/`` and ``GET|PUT|PATCH|DELETE /core/groups/{group_uuid}/``."""

    def __init__(
        self, directory: Directory, *, default_page_size: int, max_page_size: int, insert_delay: float
    ) -> None:
        self.directory = directory
        self.default_page_size = default_page_size
        self.max_page_size = max_page_size
        self.insert_delay = insert_delay

    def routes(self, prefix: str, guard: Callable[[Handler], Handler]) -> list[BaseRoute]:
        item = guard(self.item)

        async def routed_item(request: Request) -> Response:
            # DRF's router matches a lookup of [^/.]+; with a dot no URL pattern matches at all.
            if "." in request.path_params["group_uuid"]:
                return unrouted(request.method)
            return await item(request)

        return [
            Route(f"{prefix}/core/groups/", guard(self.collection), methods=ALL_METHODS),
            Route(f"{prefix}/core/groups/{{group_uuid}}/", routed_item, methods=ALL_METHODS),
        ]

    async def collection(self, request: Request) -> Response:
        caller: Caller | None = request.state.caller
        if request.method in ("GET", "HEAD"):
            require_visible(require_model_permission(caller, None), _PERM.format("view"))
            return self._list(request)
        if request.method == "POST":
            return await self._create(request, require_model_permission(caller, _PERM.format("add")))
        require_model_permission(caller, _PERM.format("change"))
        raise method_not_allowed(request.method)

    async def item(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD", "PUT", "PATCH", "DELETE"):
            raise method_not_allowed(request.method)
        caller = require_visible(request.state.caller, _PERM.format("view"))
        record = self._lookup(request.path_params["group_uuid"])
        if request.method in ("GET", "HEAD"):
            flags = query_flags(request, GROUP_INCLUDE_DEFAULTS)
            return json_response(200, self.directory.serialize_group(record, flags))
        if request.method in ("PUT", "PATCH"):
            require_object_permission(caller, "change")
            return await self._update(request, record, caller, partial=request.method == "PATCH")
        require_object_permission(caller, "delete")
        if not self.directory.delete_group(record.pk):
            raise not_found("Group")
        return Response(status_code=204)

    # -- operations ---------------------------------------------------------------------------------
    def _list(self, request: Request) -> Response:
        flags = query_flags(request, GROUP_INCLUDE_DEFAULTS)
        query = GroupQuery.parse(request.query_params, self.directory)
        with self.directory.lock:
            groups = query.select(self.directory, request.query_params.get("ordering", ""))
            size = {"default_size": self.default_page_size, "max_size": self.max_page_size}
            page, block = paginate(groups, request, **size)
            results = [self.directory.serialize_group(g, flags) for g in page]
        # Without a search licence the autocomplete block carries no schema; the key is always there.
        return json_response(200, {"pagination": block, "results": results, "autocomplete": {}})

    async def _create(self, request: Request, caller: Caller) -> Response:
        flags = query_flags(request, GROUP_INCLUDE_DEFAULTS)
        fields = self._validate(await read_json_object(request), caller, partial=False, current=None)
        # The real server checks uniqueness, then inserts; a concurrent create of the same name can slip
        # in between and the database's unique constraint then fails uncaught: authentik's crash page.
        await asyncio.sleep(self.insert_delay)
        with self.directory.lock:
            if not self._still_writable(fields, current=None):
                return crashed(request.method)
            record = self.directory.insert_group(fields)
            return json_response(201, self.directory.serialize_group(record, flags))

    async def _update(self, request: Request, record: GroupRecord, caller: Caller, *, partial: bool) -> Response:
        flags = query_flags(request, GROUP_INCLUDE_DEFAULTS)
        fields = self._validate(await read_json_object(request), caller, partial=partial, current=record)
        if not partial:
            # A PUT sends every writable field; ``users`` has a default (an empty list), so leaving it out
            # removes every member. Fields without a default (attributes, parents, roles) stay as they are.
            fields.setdefault("users", [])
        if "name" in fields:
            await asyncio.sleep(self.insert_delay)  # a rename races like a create
        with self.directory.lock:
            if self.directory.group(record.pk) is None:
                raise not_found("Group")
            if not self._still_writable(fields, current=record):
                return crashed(request.method)
            self.directory.update_group(record, fields)
            return json_response(200, self.directory.serialize_group(record, flags))

    def _still_writable(self, fields: Mapping[str, Any], current: GroupRecord | None) -> bool:
        """Whether the database would accept the write now: unique name, referenced rows still there."""
        owner = self.directory.group_named(fields["name"]) if "name" in fields else None
        if owner is not None and (current is None or owner.pk != current.pk):
            return False
        return all(pk in self.directory.groups for pk in fields.get("parents", ()))

    def _lookup(self, raw_pk: str) -> GroupRecord:
        pk = canonical_uuid(raw_pk)
        if pk is None:
            raise not_found()
        record = self.directory.group(pk)
        if record is None:
            raise not_found("Group")
        return record

    # -- validation ---------------------------------------------------------------------------------
    def _validate(
        self, body: Mapping[str, Any], caller: Caller, *, partial: bool, current: GroupRecord | None
    ) -> dict[str, Any]:
        """The writable fields of a ``GroupRequest``, or a 400 with DRF's per-field messages."""
        directory = self.directory
        checks: dict[str, Callable[[Any], Any]] = {
            "name": _clean_name,
            "is_superuser": lambda v: _check_superuser_flag(parse_bool(v), caller, current),
            "parents": lambda v: directory.check_uuid_pks(v, directory.groups),
            "users": directory.check_user_pks,
            "attributes": _clean_attributes,
            "roles": lambda v: directory.check_uuid_pks(v, directory.roles),
        }
        errors: dict[str, list[str]] = {}
        clean: dict[str, Any] = {}
        for name, check in checks.items():
            if name not in body:
                if name == "name" and not partial:
                    errors[name] = ["This field is required."]
                continue
            if body[name] is None:
                errors[name] = ["This field may not be null."]
                continue
            try:
                clean[name] = check(body[name])
            except FieldError as err:
                errors[name] = [str(err)]
        if "name" in clean:
            owner = directory.group_named(clean["name"])
            if owner is not None and (current is None or owner.pk != current.pk):
                errors["name"] = ["Group with this name already exists."]
        if errors:
            raise ApiError(400, errors)
        return clean


def _clean_name(value: Any) -> str:
    # DRF's CharField takes numbers as text and trims surrounding whitespace before the blank check.
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise FieldError("Not a valid string.")
    text = str(value).strip()
    if not text:
        raise FieldError("This field may not be blank.")
    return text


def _clean_attributes(value: Any) -> dict[str, Any]:
    # authentik's JSONDictField: any JSON is parsed, then its is_dict validator refuses all but an object.
    if not isinstance(value, dict):
        raise FieldError("Value must be a dictionary, and not have any duplicate keys.")
    return value


def require_object_permission(caller: Caller, action: str) -> None:
    """DRF's object permission check for a write: the caller may see the group but not ``action`` it."""
    if not caller.has(_PERM.format(action)):
        raise ApiError(403, NO_PERMISSION)


def _check_superuser_flag(value: bool, caller: Caller, current: GroupRecord | None) -> bool:
    """GroupSerializer.validate_is_superuser: setting the flag, or changing it, needs its own permission."""
    if current is not None and value == current.is_superuser:
        return value
    permission = f"authentik_core.{'enable' if value else 'disable'}_group_superuser"
    if (current is not None or value) and not caller.has(permission):
        raise FieldError(f"User does not have permission to set superuser status to {value}.")
    return value
