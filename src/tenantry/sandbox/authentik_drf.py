"""The Django and REST framework behaviour shared by the authentik sandbox endpoints: errors, params, pages."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

# DRF's BooleanField (rest_framework/fields.py): a string is lower-cased (not stripped), then looked up here.
_TRUE: frozenset[object] = frozenset({"t", "y", "yes", "true", "on", "1", 1})  # 1 == True == 1.0
_FALSE: frozenset[object] = frozenset({"f", "n", "no", "false", "off", "0", 0})  # 0 == False == 0.0
# Django's NullBooleanSelect, behind django-filter's BooleanFilter (the ``is_superuser`` filter): any other
# value, "1" and "0" included, leaves the filter out.
_FILTER_BOOLEANS = {"True": True, "true": True, "2": True, "False": False, "false": False, "3": False}
# authentik's error views (authentik/core/views/error.py) are TemplateViews: GET renders the page, OPTIONS
# answers from View, anything else gets HttpResponseNotAllowed with an empty body.
ERROR_VIEW_ALLOW = "GET, HEAD, OPTIONS"


class ApiError(Exception):
    """An error answered as DRF would: a status and a JSON body (a ``detail``, field errors, or the bare
    list DRF sends for a ValidationError raised with a plain message)."""

    def __init__(self, status: int, body: Mapping[str, Any] | list[str]) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body: dict[str, Any] | list[str] = list(body) if isinstance(body, list) else dict(body)

    def response(self) -> Response:
        return json_response(self.status, self.body)


class FieldError(ValueError):
    """One field's validation message; collected per field into a 400 body."""


def json_response(status: int, payload: Any) -> Response:
    return JSONResponse(payload, status_code=status)


def error_view(method: str, status: int, title: str) -> Response:
    """What one of authentik's error views answers ``method``: the HTML page to GET, 405 to any write.

    Django's handler404 (an unrouted path, such as one without its trailing slash: authentik sets
    ``APPEND_SLASH = False``, so there is no redirect) and handler500 (an uncaught exception) are these
    views, so a crash on POST, PUT, PATCH or DELETE answers 405 with ``Allow: GET, HEAD, OPTIONS``.
    """
    if method in ("GET", "HEAD"):
        page = f'<!DOCTYPE html>\n<html lang="en">\n<head><title>{title} - authentik</title></head>\n'
        page += f"<body><h1>{title}</h1></body>\n</html>\n"
        return Response(page, status_code=status, media_type="text/html")
    headers = {"Allow": ERROR_VIEW_ALLOW}
    if method == "OPTIONS":
        return Response(b"", status_code=200, headers=headers, media_type="text/html")
    return Response(b"", status_code=405, headers=headers, media_type="text/html")


def crashed(method: str) -> Response:
    """authentik's answer to an uncaught exception (handler500 = ServerErrorView)."""
    return error_view(method, 500, "Server Error")


def crash_parts(method: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """:func:`crashed` as raw ASGI parts, for the fault controls' ``crash`` kind."""
    response = crashed(method)
    headers = [(k, v) for k, v in response.raw_headers if k != b"content-length"]
    return response.status_code, headers, bytes(response.body)


def unrouted(method: str) -> Response:
    """authentik's answer to a path no URL pattern matches (handler404 = NotFoundView)."""
    return error_view(method, 404, "Not Found")


def not_found(model: str | None = None) -> ApiError:
    """DRF's 404: Django's message for a well-formed id nothing matches; a bare ``Not found.`` for an id
    the field cannot even parse (rest_framework/generics.py get_object_or_404 raises a bare Http404)."""
    detail = "Not found." if model is None else f"No {model} matches the given query."
    return ApiError(404, {"detail": detail})


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
    key = value.lower() if isinstance(value, str) else value
    try:
        if key in _TRUE:
            return True
        if key in _FALSE:
            return False
    except TypeError:  # unhashable: a list or an object
        pass
    raise FieldError("Must be a valid boolean.")


def filter_bool(raw: str | None) -> bool | None:
    """A boolean filter parameter as django-filter reads it; None when the filter is left out."""
    return None if raw is None else _FILTER_BOOLEANS.get(raw)


def query_flags(request: Request, defaults: Mapping[str, bool]) -> dict[str, bool]:
    """The ``include_*`` flags: authentik's serializer compares ``str(value).lower() == "true"``, so any
    other value (``1``, ``yes``, garbage) is false and none is ever refused."""
    params = request.query_params
    return {name: str(params.get(name, str(default))).lower() == "true" for name, default in defaults.items()}


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
