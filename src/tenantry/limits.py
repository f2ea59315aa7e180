"""Back-pressure: a process runs only so many writes at once; a burst waits its turn briefly, then gets 503."""

from __future__ import annotations

import asyncio

import structlog
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from starlette.types import ASGIApp, Receive, Scope, Send

from tenantry.web import STORE_RETRY_AFTER_SECONDS

log = structlog.get_logger("tenantry.limits")

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
WRITES_REFUSED = Counter("tenantry_writes_refused_total", "Writes answered 503 because too many were running")


class WriteLimit:
    """ASGI middleware: at most ``limit`` write requests of this process run at once, each until its answer
    is sent (a create's wait for its first reconcile included). The others wait up to ``wait_seconds`` for
    a turn, in order, and are then answered 503 with ``Retry-After`` in the API's error shape.

    A write holds a connection for its unit of work and another one or two while its reconcile runs, so
    bounding the writes in flight bounds what they take from the store's pool: a burst of creations queues
    here, where the wait is bounded and the answer clean, instead of timing out inside the pool.
    """

    def __init__(self, app: ASGIApp, *, limit: int, wait_seconds: float) -> None:
        self.app = app
        self._turns = asyncio.Semaphore(limit)
        self._wait = wait_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        try:
            async with asyncio.timeout(self._wait):
                await self._turns.acquire()
        except TimeoutError:
            WRITES_REFUSED.inc()
            log.warning("api.writes_busy", method=scope["method"], path=scope["path"])
            busy = JSONResponse(
                {"error": "unavailable", "detail": "too many changes are being made right now; retry shortly"},
                status_code=503,
                headers={"Retry-After": str(STORE_RETRY_AFTER_SECONDS)},
            )
            await busy(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._turns.release()
