"""The authentik sandbox's ``/core/groups/`` endpoints: filtered pages, CRUD and the create race."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tenantry.sandbox.authentik_drf import (
    ApiError,
    FieldError,
    json_response,
    method_not_allowed,
    not_found,
    paginate,
    parse_bool,
    query_flags,
    read_json_object,
    server_error,
)
from tenantry.sandbox.authentik_store import GROUP_INCLUDE_DEFAULTS, Directory, GroupRecord, canonical_uuid

Handler = Callable[[Request], Awaitable[Response]]
# Every method reaches the handler so an unsupported one gets DRF's JSON 405 after authentication.
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_SORT_KEYS: dict[str, Callable[[GroupRecord], Any]] = {
    "name": lambda g: g.name,
    "is_superuser": lambda g: g.is_superuser,
    "num_pk": lambda g: g.num_pk,
    "pk": lambda g: g.pk,
}
_DEFAULT_ORDERING = ("name",)


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
        return [
            Route(f"{prefix}/core/groups/", guard(self.collection), methods=ALL_METHODS),
            Route(f"{prefix}/core/groups/{{group_uuid}}/", guard(self.item), methods=ALL_METHODS),
        ]

    async def collection(self, request: Request) -> Response:
        if request.method in ("GET", "HEAD"):
            return self._list(request)
        if request.method == "POST":
            return await self._create(request)
        raise method_not_allowed(request.method)

    async def item(self, request: Request) -> Response:
        record = self._lookup(request.path_params["group_uuid"])
        if request.method in ("GET", "HEAD"):
            flags = query_flags(request, GROUP_INCLUDE_DEFAULTS)
            return json_response(200, self.directory.serialize_group(record, flags))
        if request.method in ("PUT", "PATCH"):
            return await self._update(request, record, partial=request.method == "PATCH")
        if request.method == "DELETE":
            if not self.directory.delete_group(record.pk):
                raise not_found("Group")
            return Response(status_code=204)
        raise method_not_allowed(request.method)

    # -- operations ---------------------------------------------------------------------------------
    def _list(self, request: Request) -> Response:
        flags = query_flags(request, GROUP_INCLUDE_DEFAULTS)
        groups = _ordered(self._filtered(request), request.query_params.get("ordering", ""))
        page, block = paginate(groups, request, default_size=self.default_page_size, max_size=self.max_page_size)
        results = [self.directory.serialize_group(g, flags) for g in page]
        # Without a search licence the autocomplete block carries no schema; the key is always there.
        return json_response(200, {"pagination": block, "results": results, "autocomplete": {}})

    async def _create(self, request: Request) -> Response:
        flags = query_flags(request, GROUP_INCLUDE_DEFAULTS)
        fields = self._validate(await read_json_object(request), partial=False, current=None)
        # The real server checks uniqueness, then inserts; a concurrent create of the same name can slip
        # in between and the database's unique constraint then fails uncaught.
        await asyncio.sleep(self.insert_delay)
        with self.directory.lock:
            if not self._still_writable(fields, current=None):
                return server_error()
            record = self.directory.insert_group(fields)
            return json_response(201, self.directory.serialize_group(record, flags))

    async def _update(self, request: Request, record: GroupRecord, *, partial: bool) -> Response:
        flags = query_flags(request, GROUP_INCLUDE_DEFAULTS)
        fields = self._validate(await read_json_object(request), partial=partial, current=record)
        if "name" in fields:
            await asyncio.sleep(self.insert_delay)  # a rename races like a create
        with self.directory.lock:
            if self.directory.group(record.pk) is None:
                raise not_found("Group")
            if not self._still_writable(fields, current=record):
                return server_error()
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
        record = self.directory.group(pk) if pk is not None else None
        if record is None:
            raise not_found("Group")
        return record

    # -- validation ---------------------------------------------------------------------------------
    def _validate(self, body: Mapping[str, Any], *, partial: bool, current: GroupRecord | None) -> dict[str, Any]:
        """The writable fields of a ``GroupRequest``, or a 400 with DRF's per-field messages."""
        directory = self.directory
        checks: dict[str, Callable[[Any], Any]] = {
            "name": _clean_name,
            "is_superuser": parse_bool,
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

    # -- filters ------------------------------------------------------------------------------------
    def _filtered(self, request: Request) -> list[GroupRecord]:
        params = request.query_params
        groups = self.directory.all_groups()
        if name := params.get("name"):
            groups = [g for g in groups if g.name == name]  # exact and case-sensitive
        if raw := params.get("attributes"):
            matches = attribute_matcher(raw)
            groups = [g for g in groups if matches(g.attributes)]
        if raw := params.get("is_superuser"):
            try:
                wanted = parse_bool(raw)
            except FieldError as err:
                raise ApiError(400, {"is_superuser": [str(err)]}) from None
            groups = [g for g in groups if g.is_superuser is wanted]
        members = self._member_pks(request)
        if members is not None:
            groups = [g for g in groups if members.intersection(g.users)]
        if term := params.get("search"):
            groups = [g for g in groups if term.casefold() in g.name.casefold()]
        return groups

    def _member_pks(self, request: Request) -> set[int] | None:
        """Users named by ``members_by_pk``/``members_by_username`` (any of them matches), None if unset."""
        by_pk = [v for v in request.query_params.getlist("members_by_pk") if v]
        by_name = [v for v in request.query_params.getlist("members_by_username") if v]
        if not by_pk and not by_name:
            return None
        with self.directory.lock:
            usernames = {str(u.get("username")): pk for pk, u in self.directory.users.items()}
            known = set(self.directory.users)
        pks: set[int] = set()
        for param, values, resolve in (
            ("members_by_pk", by_pk, _int_or_none),
            ("members_by_username", by_name, usernames.get),
        ):
            for value in values:
                pk = resolve(value)
                if pk is None or pk not in known:
                    raise ApiError(
                        400, {param: [f"Select a valid choice. {value} is not one of the available choices."]}
                    )
                pks.add(pk)
        return pks


def attribute_matcher(raw: str) -> Callable[[Mapping[str, Any]], bool]:
    """The ``attributes`` filter: a JSON object whose keys (``__`` walks into nested values) must all
    equal the group's values with JSON types respected (``42`` is not ``"42"``, ``true`` is not ``1``)."""
    try:
        wanted = json.loads(raw)
    except ValueError:
        raise ApiError(400, {"attributes": ["filter: failed to parse JSON"]}) from None
    if not isinstance(wanted, dict):
        raise ApiError(400, {"attributes": ["filter: value must be key:value mapping"]})
    lookups = [(key.split("__"), value) for key, value in wanted.items()]

    def matches(attributes: Mapping[str, Any]) -> bool:
        return all(_lookup_equals(attributes, path, value) for path, value in lookups)

    return matches


def _lookup_equals(attributes: Mapping[str, Any], path: list[str], wanted: Any) -> bool:
    node: Any = attributes
    for segment in path:
        if isinstance(node, dict) and segment in node:
            node = node[segment]
        elif isinstance(node, list) and segment.isdigit() and int(segment) < len(node):
            node = node[int(segment)]  # a numeric segment indexes a JSON array, as a key transform does
        else:
            return False
    return json_equal(node, wanted)


def json_equal(left: Any, right: Any) -> bool:
    """Equality of two JSON values as the database compares them: no bool/number or number/string mixing."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left is right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(json_equal(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    if type(left) is not type(right):
        return False
    return bool(left == right)


def _ordered(groups: list[GroupRecord], ordering: str) -> list[GroupRecord]:
    # Unknown ordering terms are ignored, as DRF's OrderingFilter does, falling back to the default.
    terms = [t.strip() for t in ordering.split(",") if t.strip().lstrip("-") in _SORT_KEYS]
    out = list(groups)
    for term in reversed(terms or list(_DEFAULT_ORDERING)):  # stable sorts, least significant first
        out.sort(key=_SORT_KEYS[term.lstrip("-")], reverse=term.startswith("-"))
    return out


def _clean_name(value: Any) -> str:
    # DRF's CharField takes numbers as text and trims surrounding whitespace before the blank check.
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise FieldError("Not a valid string.")
    text = str(value).strip()
    if not text:
        raise FieldError("This field may not be blank.")
    return text


def _clean_attributes(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FieldError(f'Expected a dictionary of items but got type "{type(value).__name__}".')
    return value


def _int_or_none(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None
