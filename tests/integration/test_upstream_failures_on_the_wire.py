"""Each upstream client, on the transport the product runs with (no test transport: real sockets on loopback),
tells an upstream that refuses the connection from one that does not answer in time, and one that hangs up
from both: the step messages and retry decisions depend on that difference."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from tenantry.integrations.authentik.client import AuthentikClient
from tenantry.integrations.authentik.errors import AuthentikConnectionError, AuthentikTimeoutError
from tenantry.integrations.http import build_http_client
from tenantry.integrations.ocis.client import OcisClient
from tenantry.integrations.ocis.errors import OcisConnectionError, OcisTimeoutError
from tenantry.integrations.stalwart.client import StalwartClient
from tenantry.integrations.stalwart.errors import StalwartConnectionError, StalwartTimeoutError

Call = Callable[[httpx.AsyncClient, str], Awaitable[Any]]

CLIENTS: dict[str, tuple[Call, type[Exception], type[Exception]]] = {
    "authentik": (
        lambda http, url: AuthentikClient(http, url, "token").get_group("g"),
        AuthentikConnectionError,
        AuthentikTimeoutError,
    ),
    "stalwart": (
        lambda http, url: StalwartClient(http, url, api_key="key").session(),
        StalwartConnectionError,
        StalwartTimeoutError,
    ),
    "ocis": (
        lambda http, url: OcisClient(http, url, httpx.BasicAuth("u", "p")).get_drive("d"),
        OcisConnectionError,
        OcisTimeoutError,
    ),
}


def _refused_url() -> tuple[socket.socket, str]:
    """A port bound and never listened on: a connection to it is refused at once."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    return probe, f"http://127.0.0.1:{probe.getsockname()[1]}"


@asynccontextmanager
async def _upstream(behaviour: str) -> AsyncIterator[str]:
    """``silent``: reads the request and never answers; ``hang_up``: reads it and closes the connection."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        if behaviour == "silent":
            await asyncio.sleep(5)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


@pytest.mark.parametrize("upstream", sorted(CLIENTS))
async def test_a_refused_connection_is_a_connection_error_not_a_timeout(upstream: str) -> None:
    call, unreachable, timed_out = CLIENTS[upstream]
    probe, url = _refused_url()
    with probe:
        async with build_http_client(timeout=2) as http:
            with pytest.raises(unreachable) as refused:
                await call(http, url)
    assert not isinstance(refused.value, timed_out)


@pytest.mark.parametrize("upstream", sorted(CLIENTS))
async def test_an_upstream_that_does_not_answer_is_a_timeout(upstream: str) -> None:
    call, _, timed_out = CLIENTS[upstream]
    async with _upstream("silent") as url, build_http_client(timeout=0.3) as http:
        with pytest.raises(timed_out):
            await call(http, url)


@pytest.mark.parametrize("upstream", sorted(CLIENTS))
async def test_an_upstream_that_hangs_up_is_a_connection_error(upstream: str) -> None:
    call, unreachable, timed_out = CLIENTS[upstream]
    async with _upstream("hang_up") as url, build_http_client(timeout=2) as http:
        with pytest.raises(unreachable) as hung_up:
            await call(http, url)
    assert not isinstance(hung_up.value, timed_out)
