"""JMAP protocol layer of the sandbox Stalwart: errors, references and the x:<Object>/get|set|query methods."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from starlette.responses import JSONResponse, Response

from tenantry.sandbox.stalwart_model import FILTERS, Resolver, SetError
from tenantry.sandbox.stalwart_store import StalwartStore

MAX_CALLS = 16
MAX_OBJECTS = 500
MAX_QUERY = 5000
MAX_SIZE_REQUEST = 10_000_000
SESSION_LIMITS: Mapping[str, Any] = {
    "maxSizeUpload": 50_000_000,
    "maxConcurrentUpload": 4,
    "maxSizeRequest": MAX_SIZE_REQUEST,
    "maxConcurrentRequests": 4,
    "maxCallsInRequest": MAX_CALLS,
    "maxObjectsInGet": MAX_OBJECTS,
    "maxObjectsInSet": MAX_OBJECTS,
    "collationAlgorithms": ["i;ascii-numeric", "i;ascii-casemap", "i;unicode-casemap"],
}
KNOWN_CAPABILITIES = frozenset(
    {
        "urn:ietf:params:jmap:core",
        "urn:stalwart:jmap",
        "urn:ietf:params:jmap:mail",
        "urn:ietf:params:jmap:submission",
        "urn:ietf:params:jmap:vacationresponse",
        "urn:ietf:params:jmap:contacts",
        "urn:ietf:params:jmap:calendars",
        "urn:ietf:params:jmap:sieve",
        "urn:ietf:params:jmap:blob",
        "urn:ietf:params:jmap:quota",
        "urn:ietf:params:jmap:principals",
        "urn:ietf:params:jmap:websocket",
    }
)
METHODS = frozenset(
    {
        ("Domain", "get"),
        ("Domain", "set"),
        ("Domain", "query"),
        ("Account", "get"),
        ("Account", "set"),
        ("Account", "query"),
        ("DkimSignature", "get"),
        ("DkimSignature", "set"),
        ("DkimSignature", "query"),
    }
)
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_SET_ARGS = ("create", "update", "destroy")
_REFERABLE = ("/get", "/query")
_ID_FILTERS = frozenset({"domainId", "memberGroupIds", "memberTenantId"})
_SET_RESULTS = ("created", "updated", "destroyed", "notCreated", "notUpdated", "notDestroyed")


def problem(status: int, detail: str | None = None, *, type_: str = "about:blank") -> dict[str, Any]:
    """An RFC 7807 body as upstream sends for request-level errors."""
    title = _TITLES.get(status, "Error")
    return {"type": type_, "status": status, "title": title, "detail": detail or title}


# The two challenges of upstream's 401 (``HttpResponse::unauthorized`` in crates/http/src/api/mod.rs).
WWW_AUTHENTICATE = (
    'Bearer realm="Stalwart Server", resource_metadata="/.well-known/oauth-protected-resource"',
    'Basic realm="Stalwart Server"',
)
_LIMIT_DETAILS = {
    "maxSizeRequest": "The request is larger than the server is willing to process.",
    "maxCallsInRequest": "The request exceeds the maximum number of calls in a single request.",
}


class RequestError(Exception):
    """A request-level error: the whole HTTP request fails with problem+json (crates/jmap-proto/src/error/
    request.rs): ``about:blank`` errors carry a title, the JMAP ones (notJSON, notRequest, limit) do not."""

    def __init__(self, status: int, body: dict[str, Any], *, challenges: tuple[str, ...] = ()) -> None:
        super().__init__(body.get("detail"))
        self.status = status
        self.body = body
        self.challenges = challenges

    @classmethod
    def unauthorized(cls) -> RequestError:
        return cls(401, problem(401, "You have to authenticate first."), challenges=WWW_AUTHENTICATE)

    @classmethod
    def jmap(cls, kind: str, detail: str) -> RequestError:
        return cls(400, {"type": f"urn:ietf:params:jmap:error:{kind}", "status": 400, "detail": detail})

    @classmethod
    def limit(cls, which: str) -> RequestError:
        body = {"type": "urn:ietf:params:jmap:error:limit", "status": 400, "detail": _LIMIT_DETAILS[which]}
        body["limit"] = which
        return cls(400, body)

    def response(self) -> Response:
        response = JSONResponse(self.body, status_code=self.status, media_type="application/problem+json")
        for challenge in self.challenges:
            response.headers.append("WWW-Authenticate", challenge)
        return response


class MethodError(Exception):
    """A method-level error: answered as ``["error", {...}, callId]``; the request goes on."""

    def __init__(self, type_: str, description: str) -> None:
        super().__init__(description)
        self.type = type_
        self.description = description

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "description": self.description}


# -- references ---------------------------------------------------------------------------------------
def resolve_references(arguments: Mapping[str, Any], responses: list[list[Any]]) -> dict[str, Any]:
    """Replace ``"#name": {resultOf, name, path}`` arguments by values from earlier responses (RFC 8620 3.7)."""
    out: dict[str, Any] = {}
    for key, value in arguments.items():
        if not key.startswith("#"):
            out[key] = value
            continue
        if key[1:] in arguments:
            raise MethodError("invalidArguments", f"Both {key[1:]} and {key} were given")
        if not (isinstance(value, dict) and all(isinstance(value.get(f), str) for f in ("resultOf", "name", "path"))):
            raise MethodError("invalidResultReference", f"Malformed result reference {key}")
        # Upstream evaluates references into /get and /query results only (its /set responses have no JSON
        # pointer support: references/eval.rs); a reference it cannot evaluate fails the call that made it.
        missing = MethodError(
            "invalidResultReference", f"Result reference to {value['resultOf']}#{value['name']} not found."
        )
        source = next((r for r in responses if r[2] == value["resultOf"] and r[0] == value["name"]), None)
        if source is None or not source[0].endswith(_REFERABLE):
            raise missing
        out[key[1:]] = _pointer(source[1], value["path"], missing)
    return out


def _pointer(node: Any, path: str, missing: MethodError) -> Any:
    if path in ("", "/"):
        return node
    if not path.startswith("/"):
        raise missing
    return _walk(node, [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")], missing)


def _walk(node: Any, parts: list[str], missing: MethodError) -> Any:
    if not parts:
        return node
    head, rest = parts[0], parts[1:]
    if head == "*" and isinstance(node, list):
        out: list[Any] = []
        for item in node:
            value = _walk(item, rest, missing)
            out.extend(value if isinstance(value, list) else [value])
        return out
    if isinstance(node, dict) and head in node:
        return _walk(node[head], rest, missing)
    if isinstance(node, list) and head.isdigit() and int(head) < len(node):
        return _walk(node[int(head)], rest, missing)
    raise missing


def _created_ids(ids: list[str], created: Mapping[str, str]) -> list[str]:
    """``ids`` with creation references (``#<creation id>``) replaced by the ids created earlier in the request;
    one that names no such creation fails the call, as upstream's GetRequest reference resolution does."""
    for raw in ids:
        if raw.startswith("#") and raw[1:] not in created:
            raise MethodError("invalidResultReference", f'Id reference "{raw[1:]}" does not exist or is invalid.')
    return [created[raw[1:]] if raw.startswith("#") else raw for raw in ids]


# -- methods --------------------------------------------------------------------------------------------
def call_method(
    store: StalwartStore, name: str, arguments: dict[str, Any], account_id: str, created: dict[str, str]
) -> dict[str, Any]:
    """Run one method call; raises :class:`MethodError` for method-level errors."""
    prefix, _, verb = name.partition("/")
    obj = prefix[2:] if prefix.startswith("x:") else ""
    if (obj, verb) not in METHODS:
        raise MethodError("unknownMethod", name)
    given = arguments.get("accountId")
    if given is not None and not isinstance(given, str):
        raise MethodError("invalidArguments", "accountId must be a string")
    if given is not None and given != account_id:
        raise MethodError("forbidden", "You are not authorized to perform this action")
    if verb == "get":
        return {"accountId": account_id, **_get(store, obj, arguments, created)}
    if verb == "set":
        return {"accountId": account_id, **_set(store, obj, arguments, created)}
    return {"accountId": account_id, **_query(store, obj, arguments)}


def _real_id(raw: str, created: Mapping[str, str]) -> str | None:
    return created.get(raw[1:]) if raw.startswith("#") else raw


def _string_list(value: Any, name: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MethodError("invalidArguments", f"{name} must be a list of strings or null")
    return value


def _get(store: StalwartStore, obj: str, arguments: Mapping[str, Any], created: Mapping[str, str]) -> dict[str, Any]:
    table = store.tables[obj]
    ids = _string_list(arguments.get("ids"), "ids")
    properties = _string_list(arguments.get("properties"), "properties")
    if ids is not None and len(ids) > MAX_OBJECTS:
        raise MethodError("requestTooLarge", f"Too many ids requested (maximum {MAX_OBJECTS})")
    if properties is not None:
        known = {"id", *store.props(obj), *(() if obj == "Domain" else ("@type",))}
        unknown = [p for p in properties if p not in known]
        if unknown:
            raise MethodError("invalidArguments", f"Invalid property {unknown[0]}")
    found: list[dict[str, Any]] = []
    not_found: list[str] = []
    for real in _created_ids(ids, created) if ids is not None else list(table)[:MAX_OBJECTS]:
        if real not in table:
            not_found.append(real)
        else:
            found.append(store.read(obj, real, properties))
    return {"list": found, "notFound": not_found}


def _set(store: StalwartStore, obj: str, arguments: Mapping[str, Any], created: dict[str, str]) -> dict[str, Any]:
    create, update, destroy = (arguments.get(k) for k in _SET_ARGS)
    if (
        not isinstance(create, dict | None)
        or not isinstance(update, dict | None)
        or not isinstance(destroy, list | None)
    ):
        raise MethodError("invalidArguments", "create and update must be objects, destroy a list")
    create, update, destroy = create or {}, update or {}, destroy or []
    if len(create) + len(update) + len(destroy) > MAX_OBJECTS:
        raise MethodError("requestTooLarge", f"Too many objects in one set (maximum {MAX_OBJECTS})")

    def resolve(value: str) -> str:
        real = _real_id(value, created)
        if real is None:
            raise SetError("invalidProperties", f"Unknown creation reference {value}")
        return real

    out: dict[str, dict[str, Any]] = {
        name: {} for name in ("created", "updated", "notCreated", "notUpdated", "notDestroyed")
    }
    destroyed: list[str] = []
    for creation_id, value in create.items():
        new_id, error = _outcome(partial(_create_one, store, obj, value, resolve))
        if error is not None:
            out["notCreated"][creation_id] = error
        else:
            created[creation_id] = new_id
            out["created"][creation_id] = {"id": new_id}
    for raw_id, patch in update.items():
        if raw_id in destroy:
            # An id both updated and destroyed is only destroyed (registry/set.rs).
            out["notUpdated"][raw_id] = SetError("willDestroy", "ID will be destroyed.").to_json()
            continue
        _, error = _outcome(partial(_update_one, store, obj, raw_id, patch, created, resolve))
        if error is not None:
            out["notUpdated"][raw_id] = error
        else:
            out["updated"][raw_id] = None
    for raw_id in destroy:
        _, error = _outcome(partial(_destroy_one, store, obj, raw_id, created))
        if error is not None:
            out["notDestroyed"][str(raw_id)] = error
        else:
            destroyed.append(raw_id)
    # Upstream's SetResponse skips every empty collection when serialising: no null, no {} (method/set.rs).
    answer: dict[str, Any] = {**out, "destroyed": destroyed}
    return {key: answer[key] for key in _SET_RESULTS if answer[key]}


def _outcome(action: Callable[[], Any]) -> tuple[Any, dict[str, Any] | None]:
    try:
        return action(), None
    except SetError as err:
        return None, err.to_json()


def _create_one(store: StalwartStore, obj: str, value: Any, resolve: Resolver) -> str:
    if not isinstance(value, dict):
        raise SetError("invalidPatch", "Expected a JSON object")
    return store.create(obj, value, resolve)


def _update_one(
    store: StalwartStore, obj: str, raw_id: str, patch: Any, created: Mapping[str, str], resolve: Resolver
) -> None:
    real = _real_id(raw_id, created)
    if real is None:
        raise SetError("notFound")
    if not isinstance(patch, dict):
        raise SetError("invalidPatch", "Expected a JSON object")
    store.update(obj, real, patch, resolve)


def _destroy_one(store: StalwartStore, obj: str, raw_id: Any, created: Mapping[str, str]) -> None:
    real = _real_id(raw_id, created) if isinstance(raw_id, str) else None
    if real is None:
        raise SetError("notFound")
    store.destroy(obj, real)


def _conditions(node: Any, obj: str, out: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    if node is None:
        return out
    if not isinstance(node, dict):
        raise MethodError("invalidArguments", "filter must be an object")
    if "operator" in node:
        if node.get("operator") != "AND" or not isinstance(node.get("conditions"), list):
            raise MethodError("unsupportedFilter", "Only AND is supported in filters")
        for condition in node["conditions"]:
            _conditions(condition, obj, out)
        return out
    for key, value in node.items():
        if key not in FILTERS[obj]:
            raise MethodError("unsupportedFilter", f"Filter on property {key} is not supported or invalid")
        out.append((key, value))
    return out


def _sort_key(store: StalwartStore, obj: str, arguments: Mapping[str, Any]) -> tuple[str, bool]:
    """The one comparator upstream honours (the first; ``id`` descending when none is given)."""
    sort = arguments.get("sort") or []
    if not isinstance(sort, list):
        raise MethodError("invalidArguments", "sort must be a list")
    if not sort:
        return "id", False
    first = sort[0]
    prop = first.get("property") if isinstance(first, dict) else None
    if prop != "id" and (prop not in FILTERS[obj] or prop == "text"):
        raise MethodError("unsupportedSort", f"Property {prop} is not supported for sorting")
    return str(prop), first.get("isAscending", True) is not False


def _query(store: StalwartStore, obj: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """``x:<Object>/query`` as crates/jmap/src/registry/query.rs and api/query.rs answer it: ids newest first
    unless sorted, ``queryState`` "n", ``canCalculateChanges`` true, ``total`` only when asked for."""
    conditions = _conditions(arguments.get("filter"), obj, [])
    for key, value in conditions:
        # Upstream resolves no creation reference in a filter: "#<creation id>" parses as no id at all.
        if key in _ID_FILTERS and isinstance(value, str) and value.startswith("#"):
            raise MethodError("unsupportedFilter", f"Filter on property {key} is not supported or invalid")
    ids = store.query(obj, conditions)  # oldest first: ascending ids
    prop, ascending = _sort_key(store, obj, arguments)
    if prop != "id":
        table = store.tables[obj]
        ids.sort(key=lambda object_id: str(table[object_id].get(prop) or ""))
    if not ascending:
        ids.reverse()
    position, limit = arguments.get("position"), arguments.get("limit")
    total_wanted = arguments.get("calculateTotal") is True
    if arguments.get("anchor") is not None:
        raise MethodError("invalidArguments", "anchor is not supported")
    if not isinstance(position, int | None) or not isinstance(limit, int | None) or (limit or 0) < 0:
        raise MethodError("invalidArguments", "position and limit must be integers")
    window = MAX_QUERY if limit is None else min(limit, MAX_QUERY)
    out: dict[str, Any] = {"queryState": "n", "canCalculateChanges": True}
    if prop == "id" and not total_wanted and (position is None or position > 0):
        # Sorted by id, the store itself pages and the answer says position 0 (extract_parameters).
        start = position or 0
        return {**out, "position": 0, "ids": ids[start : start + window]}
    position = position or 0
    start = max(len(ids) + position, 0) if position < 0 else position
    page = ids[start:] if window == 0 else ids[start : start + window]
    out.update(position=start if start <= len(ids) else 0, ids=page)
    if total_wanted:
        out["total"] = len(ids)
    if len(ids) > window:
        out["limit"] = window
    return out
