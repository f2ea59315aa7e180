"""The Django REST framework behaviour shared by the authentik sandbox endpoints: errors, params, pages."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

# DRF's BooleanField accepts these spellings, in request bodies and in the flag serializers alike.
_TRUE = frozenset({"t", "y", "yes", "true", "on", "1"})
_FALSE = frozenset({"f", "n", "no", "false", "off", "0"})

# What Django answers for an uncaught exception when DEBUG is off: HTML, never the API's JSON.
_SERVER_ERROR_HTML = (
    '<!doctype html>\n<html lang="en">\n<head>\n  <title>Server Error (500)</title>\n</head>\n'
    "<body>\n  <h1>Server Error (500)</h1><p></p>\n</body>\n</html>\n"
)


class ApiError(Exception):
    """An error answered as DRF would: a status and a JSON body (a ``detail`` or field errors)."""

    def __init__(self, status: int, body: Mapping[str, Any]) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = dict(body)

    def response(self) -> Response:
        return json_response(self.status, self.body)


class FieldError(ValueError):
    """One field's validation message; collected per field into a 400 body."""


def json_response(status: int, payload: Any) -> Response:
    return JSONResponse(payload, status_code=status)


def server_error() -> Response:
    return Response(_SERVER_ERROR_HTML, status_code=500, media_type="text/html")


def not_found(model: str) -> ApiError:
    return ApiError(404, {"detail": f"No {model} matches the given query."})


def method_not_allowed(method: str) -> ApiError:
    return ApiError(405, {"detail": f'Method "{method}" not allowed.'})


async def read_json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or the 400 DRF gives for a body it cannot use."""
    raw = await request.body()
    if not raw.strip():
        # DRF treats an empty body as an empty form; the serializer then reports required fields.
        return {}
    try:
        data = json.loads(raw)
    except ValueError as err:
        raise ApiError(400, {"detail": f"JSON parse error - {err}"}) from None
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise ApiError(400, {"non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]})
    return data


def parse_bool(value: Any) -> bool:
    """DRF BooleanField semantics; raises :class:`FieldError` for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise FieldError("Must be a valid boolean.")


def query_flags(request: Request, defaults: Mapping[str, bool]) -> dict[str, bool]:
    """Boolean query flags (``include_users`` and the like) with their defaults; 400 on a bad value."""
    flags: dict[str, bool] = {}
    errors: dict[str, list[str]] = {}
    for name, default in defaults.items():
        raw = request.query_params.get(name)
        try:
            flags[name] = default if raw is None else parse_bool(raw)
        except FieldError as err:
            errors[name] = [str(err)]
    if errors:
        raise ApiError(400, errors)
    return flags


def _positive_int(raw: str | None) -> int | None:
    try:
        value = int(raw) if raw is not None else None
    except ValueError:
        return None
    return value if value is not None and value > 0 else None


def paginate(
    items: Sequence[Any], request: Request, *, default_size: int, max_size: int
) -> tuple[list[Any], dict[str, int]]:
    """Slice ``items`` the way authentik's page-number pagination does and build its ``pagination`` block.

    A missing, zero or unparsable ``page_size`` falls back to the default and a larger one is clamped to
    the maximum, silently. ``next``/``previous`` are page numbers with 0 for none. An unusable page is a
    404 ``Invalid page.``, as DRF answers.
    """
    size = _positive_int(request.query_params.get("page_size"))
    size = default_size if size is None else min(size, max_size)
    count = len(items)
    total_pages = max(1, math.ceil(count / size))
    raw_page = request.query_params.get("page", "1")
    number = total_pages if raw_page == "last" else _positive_int(raw_page)
    if number is None or number > total_pages:
        raise ApiError(404, {"detail": "Invalid page."})
    start = (number - 1) * size
    page = list(items[start : start + size])
    block = {
        "next": number + 1 if number < total_pages else 0,
        "previous": number - 1 if number > 1 else 0,
        "count": count,
        "current": number,
        "total_pages": total_pages,
        "start_index": start + 1 if count else 0,
        "end_index": start + len(page),
    }
    return page, block
