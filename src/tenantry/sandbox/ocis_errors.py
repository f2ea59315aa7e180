"""How the sandbox oCIS answers a failure: Graph's OData error body, the proxy's bare 401, chi's 404 and 405.

Graph renders every message through ``xstrings.FirstRuneToUpper`` and stamps ``innererror.date`` in RFC 3339
with whole seconds (services/graph/pkg/errorcode/errorcode.go), so the handlers below do the same.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response


class GraphError(Exception):
    """An OData error answer: HTTP status, LibreGraph error code and the message Graph renders."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class UnauthorizedError(Exception):
    """Missing or rejected credentials: answered as the proxy does, 401 with no body."""


def first_rune_upper(message: str) -> str:
    return message[:1].upper() + message[1:]


def drive_not_found() -> GraphError:
    return GraphError(404, "itemNotFound", "drive not found")


def odata_error(status: int, code: str, message: str) -> JSONResponse:
    """The LibreGraph error body every Graph failure carries."""
    date = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {
        "error": {
            "code": code,
            "message": first_rune_upper(message),
            "innererror": {"date": date, "request-id": str(uuid.uuid4())},
        }
    }
    return JSONResponse(body, status_code=status)


async def graph_error_response(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GraphError)
    return odata_error(exc.status, exc.code, exc.message)


async def unauthorized_response(_request: Request, _exc: Exception) -> Response:
    return Response(status_code=401)


async def http_error_response(_request: Request, exc: Exception) -> Response:
    """Unrouted requests: Graph's chi router answers them itself, not with an OData body."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return PlainTextResponse("404 page not found\n", status_code=404)
    if exc.status_code == 405:
        return Response(status_code=405)
    return odata_error(exc.status_code, "generalException", str(exc.detail))
