"""The write limit: writes beyond it wait their turn, then are told to come back; reads are never held."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tenantry.limits import WriteLimit


@dataclass
class Writes:
    """An app whose writes run until released, recording how many ran at once."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    two_running: asyncio.Event = field(default_factory=asyncio.Event)
    running: int = 0
    most: int = 0

    async def write(self, _request: Request) -> PlainTextResponse:
        self.running += 1
        self.most = max(self.most, self.running)
        self.started.set()
        if self.running >= 2:
            self.two_running.set()
        try:
            await self.release.wait()
        finally:
            self.running -= 1
        return PlainTextResponse("written", status_code=201)

    def client(self, *, limit: int, wait_seconds: float) -> httpx.AsyncClient:
        async def read(_request: Request) -> PlainTextResponse:
            return PlainTextResponse("read")

        app = Starlette(routes=[Route("/things", self.write, methods=["POST", "PATCH"]), Route("/things", read)])
        limited = WriteLimit(app, limit=limit, wait_seconds=wait_seconds)
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=limited), base_url="http://limits.test")


async def test_a_write_beyond_the_limit_is_answered_503_with_retry_after_in_the_error_shape() -> None:
    writes = Writes()
    async with writes.client(limit=1, wait_seconds=0) as http:
        first = asyncio.create_task(http.post("/things"))
        await writes.started.wait()
        busy = await http.patch("/things")
        read = await http.get("/things")
        writes.release.set()
        assert (await first).status_code == 201
        after = await http.post("/things")
    assert busy.status_code == 503
    assert busy.headers["Retry-After"] == "5"
    assert busy.json() == {"error": "unavailable", "detail": "too many changes are being made right now; retry shortly"}
    assert read.status_code == 200  # reads do not queue behind writes
    assert after.status_code == 201  # the turn was given back


async def test_writes_waiting_for_their_turn_run_one_after_another_within_the_limit() -> None:
    writes = Writes()
    async with writes.client(limit=2, wait_seconds=60) as http:
        answers = [asyncio.create_task(http.post("/things")) for _ in range(5)]
        await writes.two_running.wait()
        await asyncio.sleep(0.05)  # room for the other three to get in, were they let in
        held_back = writes.most
        writes.release.set()
        statuses = [(await a).status_code for a in answers]
    assert held_back == 2
    assert statuses == [201] * 5
    assert writes.most == 2
