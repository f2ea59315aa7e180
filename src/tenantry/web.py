"""What every route shares: the request's unit of work, the caller, and answers made after the commit."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import exc as sa_exc
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenantry.auth.actor import Actor
from tenantry.errors import AppError, ConflictError

log = structlog.get_logger("tenantry.web")


async def unit_of_work(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the handler succeeds, rolled back when it raises.

    Handlers and services only flush. The dependency is function-scoped, so the commit happens before the
    answer is sent and a failing commit still turns into an error answer.
    """
    async with request.app.state.container.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        try:
            await session.commit()
        except IntegrityError as err:  # a concurrent request changed the same rows between flush and commit
            await session.rollback()
            raise ConflictError("a concurrent change to the same tenant won; read it again and retry") from err


@contextlib.asynccontextmanager
async def own_unit_of_work(request: Request) -> AsyncIterator[AsyncSession]:
    """A unit of work apart from the request's, committed on leaving the block: for a change that must
    stand whatever the request's own work comes to (the portal's session, whose refresh token the issuer
    has just rotated and will never accept again)."""
    async with request.app.state.container.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


async def current_actor(request: Request) -> Actor:
    resolver = request.app.state.actor_resolver
    actor: Actor = await resolver(request)
    return actor


SessionDep = Annotated[AsyncSession, Depends(unit_of_work, scope="function")]
ActorDep = Annotated[Actor, Depends(current_actor)]


class AfterCommit(Response):
    """An answer whose body is made only after the request's unit of work has committed.

    For use cases that hand their change to the reconciler (which reads committed state) and answer with
    what it did: ``render`` (returning the body, or the body and headers known only then, such as an ETag)
    runs when the answer is sent, which FastAPI does after function-scoped
    dependencies, the commit among them, have finished. If the commit fails, ``render`` never runs.
    """

    def __init__(
        self,
        render: Callable[[], Awaitable[BaseModel | tuple[BaseModel, dict[str, str]]]],
        *,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status_code, headers=headers)
        self._render = render
        self._extra_headers = headers or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rendered = await self._render()
        model, late_headers = rendered if isinstance(rendered, tuple) else (rendered, {})
        answer = JSONResponse(
            model.model_dump(mode="json", by_alias=True),
            status_code=self.status_code,
            headers={**self._extra_headers, **late_headers},
        )
        await answer(scope, receive, send)


# Failures that mean the store cannot be reached or has no connection free, as opposed to a bad query: the
# driver's connection errors, a connection dropped mid-request, and the pool's timeout when every connection
# is busy (back-pressure under load). Each answers 503 with Retry-After instead of a 500.
STORE_UNAVAILABLE: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    ConnectionError,
)
STORE_RETRY_AFTER_SECONDS = 5


def install_store_error_handlers(app: FastAPI) -> None:
    """Answer requests the store cannot serve with 503, ``Retry-After`` and the API's error shape."""

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("store.unavailable", path=request.url.path, error=type(exc).__name__)
        return JSONResponse(
            {"error": "unavailable", "detail": "the database cannot be reached right now; retry shortly"},
            status_code=503,
            headers={"Retry-After": str(STORE_RETRY_AFTER_SECONDS)},
        )

    for kind in STORE_UNAVAILABLE:
        app.add_exception_handler(kind, unavailable)


_DRAINING: list[Callable[[], None]] = []


def on_draining(callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback`` when the server starts shutting down (from its event loop); returns the undo."""
    _DRAINING.append(callback)
    return lambda: _DRAINING.remove(callback)


def begin_draining() -> None:
    """The server is shutting down: long answers (event streams) should end now rather than be cut off."""
    for callback in list(_DRAINING):
        callback()


MAX_JSON_BODY_BYTES = 1 << 20  # a tenant's JSON is a few hundred bytes; anything near this is not a request


def _duplicate_key(body: bytes) -> str | None:
    """The first key an object in ``body`` repeats, or None (also None for JSON that does not parse: that
    is the body parser's to refuse)."""
    found: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in items]
        repeated = [key for key in dict.fromkeys(keys) if keys.count(key) > 1]
        found.extend(repeated)
        return dict(items)

    try:
        json.loads(body, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return None
    return found[0] if found else None


class RefuseAmbiguousJson:
    """ASGI middleware: a JSON body that repeats a key means two things at once, so it is refused (422)
    rather than read as its last value; a body over ``MAX_JSON_BODY_BYTES`` is refused (413), and one that
    is not UTF-8 (400). As for any other invalid input, a caller without a valid token learns that first."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or []) if scope["type"] == "http" else {}
        if scope["type"] != "http" or b"json" not in headers.get(b"content-type", b""):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        size, more = 0, True
        while more:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            more = message.get("more_body", False) and message["type"] == "http.request"
            if size > MAX_JSON_BODY_BYTES:
                await self._refuse(scope, receive, send, 413, "payload_too_large", "the body is too large")
                return
        body = b"".join(m.get("body", b"") for m in messages)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as err:
            # JSON is UTF-8 (RFC 8259); the parser would guess UTF-16 or UTF-32 from the first bytes.
            detail = f"the body is not UTF-8 (byte {err.start})"
            await self._refuse(scope, receive, send, 400, "bad_request", detail)
            return
        repeated = _duplicate_key(body) if body else None
        if repeated is not None:
            problem = [{"field": "body", "message": f"the key {repeated!r} appears more than once"}]
            await self._refuse(scope, receive, send, 422, "validation_error", problem)
            return
        replay = iter(messages)

        async def replayed() -> Message:
            return next(replay, None) or await receive()

        await self.app(scope, replayed, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int, code: str, detail: Any) -> None:
        resolver = getattr(scope["app"].state, "actor_resolver", None)
        if resolver is not None:
            try:
                await resolver(Request(scope, receive))
            except AppError as refused:
                answer = JSONResponse(
                    {"error": refused.code, "detail": refused.detail},
                    status_code=refused.status_code,
                    headers=refused.headers,
                )
                await answer(scope, receive, send)
                return
        await JSONResponse({"error": code, "detail": detail}, status_code=status)(scope, receive, send)


def allowed_methods(app: ASGIApp, scope: Scope) -> list[str]:
    """Every method some route accepts at this request's path (for ``Allow``), and OPTIONS.

    Each method is probed against the routes as they route (included routers among them), so the answer is
    what the router would really accept.
    """
    routes: list[BaseRoute] = list(getattr(app, "routes", []))
    methods: set[str] = {"OPTIONS"}
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        probe = {**scope, "method": method}
        if any(route.matches(probe)[0] == Match.FULL for route in routes):
            methods.add(method)
    return sorted(methods)
