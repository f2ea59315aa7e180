"""The aiohttp transport under httpx, against raw HTTP/1.1 servers on loopback: what goes on the wire, what
comes back, and each way a request can fail, as the httpx exception a caller maps onto its upstream's errors."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
import httpx
import pytest
from aiohttp.client_reqrep import ConnectionKey
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong

from tenantry.integrations.http import build_http_client
from tenantry.integrations.transport import AiohttpTransport, map_error


@dataclass
class Seen:
    """One request as the server read it."""

    line: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


Answer = Callable[[Seen, asyncio.StreamWriter], Awaitable[bool]]  # True: keep the connection open


@dataclass
class Server:
    url: str
    requests: list[Seen] = field(default_factory=list)
    connections: int = 0


def response(status: int, body: bytes = b"", *headers: tuple[str, str], reason: str = "OK") -> bytes:
    head = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _read(reader: asyncio.StreamReader) -> Seen | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    line, *rest = head.decode("latin-1").split("\r\n")
    headers = [(k.strip(), v.strip()) for k, _, v in (h.partition(":") for h in rest if h)]
    length = sum(int(v) for k, v in headers if k.lower() == "content-length")
    return Seen(line, headers, await reader.readexactly(length) if length else b"")


@asynccontextmanager
async def server(answer: Answer) -> AsyncIterator[Server]:
    state = Server(url="")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        try:
            while (seen := await _read(reader)) is not None:
                state.requests.append(seen)
                if not await answer(seen, writer):
                    break
        finally:
            writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}"
    try:
        yield state
    finally:
        listener.close()


def json_answer(payload: object, *headers: tuple[str, str]) -> Answer:
    async def answer(_: Seen, writer: asyncio.StreamWriter) -> bool:
        writer.write(response(200, json.dumps(payload).encode(), ("Content-Type", "application/json"), *headers))
        await writer.drain()
        return True

    return answer


async def test_a_request_arrives_as_sent_and_its_answer_comes_back_whole() -> None:
    twice = json_answer({"ok": True}, ("X-Twice", "a"), ("X-Twice", "b"))
    async with server(twice) as s, build_http_client() as client:
        answer = await client.post(
            f"{s.url}/api/v3/core/groups/a%2Fb/",
            params={"name": "tenant acme", "attributes": '{"tenant_slug": "é"}'},
            json={"name": "tenant-acme"},
            headers={"Authorization": "Bearer t"},
        )
    assert answer.status_code == 200
    assert answer.reason_phrase == "OK"
    assert answer.json() == {"ok": True}
    assert answer.headers.get_list("x-twice") == ["a", "b"]
    (seen,) = s.requests
    # The path and query exactly as httpx encoded them: nothing decoded or encoded a second time.
    assert seen.line == (
        "POST /api/v3/core/groups/a%2Fb/?name=tenant+acme&attributes=%7B%22tenant_slug%22%3A+%22%C3%A9%22%7D HTTP/1.1"
    )
    assert json.loads(seen.body) == {"name": "tenant-acme"}
    assert seen.header("content-type") == ["application/json"]
    assert seen.header("content-length") == [str(len(seen.body))]
    assert seen.header("authorization") == ["Bearer t"]
    assert seen.header("host") == [s.url.removeprefix("http://")]


async def test_requests_to_one_upstream_share_a_kept_alive_connection() -> None:
    async with server(json_answer([])) as s, build_http_client() as client:
        for _ in range(3):
            (await client.get(f"{s.url}/x")).raise_for_status()
        await asyncio.gather(*(client.get(f"{s.url}/y") for _ in range(4)))
    assert len(s.requests) == 7
    assert 1 <= s.connections <= 4  # the three in a row reused one; at most one more per concurrent request


async def test_a_long_header_is_read_as_httpx_s_own_parser_would() -> None:
    long = "x" * 12_000  # over aiohttp's default of 8 KiB a field, within the 16 KiB httpx takes

    async def answer(_: Seen, writer: asyncio.StreamWriter) -> bool:
        writer.write(response(200, b"{}", ("WWW-Authenticate", long)))
        return True

    async with server(answer) as s, build_http_client() as client:
        got = await client.get(f"{s.url}/x")
    assert got.headers["www-authenticate"] == long


async def test_a_header_too_long_to_read_is_a_protocol_error_that_does_not_quote_it() -> None:
    async def answer(_: Seen, writer: asyncio.StreamWriter) -> bool:
        writer.write(response(200, b"{}", ("Set-Cookie", "session=" + "s3cr3t" * 4000)))
        return True

    async with server(answer) as s, build_http_client() as client:
        with pytest.raises(httpx.RemoteProtocolError) as unreadable:
            await client.get(f"{s.url}/x")
    assert "s3cr3t" not in str(unreadable.value)  # aiohttp's own message quotes the line it could not read
    assert "127.0.0.1" in str(unreadable.value)


async def test_an_error_status_is_an_answer_not_an_exception() -> None:
    async def conflict(_: Seen, writer: asyncio.StreamWriter) -> bool:
        writer.write(response(409, b'{"detail": "taken"}', ("Retry-After", "3"), reason="Conflict"))
        return True

    async with server(conflict) as s, build_http_client() as client:
        answer = await client.get(f"{s.url}/x")
    assert (answer.status_code, answer.reason_phrase, answer.headers["retry-after"]) == (409, "Conflict", "3")
    assert answer.json() == {"detail": "taken"}


async def test_a_redirect_is_left_to_httpx() -> None:
    async def moved(seen: Seen, writer: asyncio.StreamWriter) -> bool:
        if seen.line.startswith("GET /old "):
            writer.write(response(307, b"", ("Location", "/new"), reason="Temporary Redirect"))
        else:
            writer.write(response(200, b"here"))
        return True

    async with server(moved) as s, build_http_client() as client:
        not_followed = await client.get(f"{s.url}/old")
        followed = await client.get(f"{s.url}/old", follow_redirects=True)
    assert not_followed.status_code == 307
    assert (followed.status_code, followed.text) == (200, "here")
    assert [r.line.split()[1] for r in s.requests] == ["/old", "/old", "/new"]


async def test_a_compressed_answer_is_decoded_once() -> None:
    body = gzip.compress(b'{"big": "' + b"x" * 5000 + b'"}')

    async def zipped(_: Seen, writer: asyncio.StreamWriter) -> bool:
        writer.write(response(200, body, ("Content-Encoding", "gzip"), ("Content-Type", "application/json")))
        return True

    async with server(zipped) as s, build_http_client() as client:
        answer = await client.get(f"{s.url}/x")
    assert answer.json() == {"big": "x" * 5000}


async def test_cookies_are_httpx_s_alone() -> None:
    async def cookie(_: Seen, writer: asyncio.StreamWriter) -> bool:
        writer.write(response(200, b"", ("Set-Cookie", "session=abc; Path=/")))
        return True

    async with server(cookie) as s, build_http_client() as client:
        await client.get(f"{s.url}/a")
        await client.get(f"{s.url}/b")
    # httpx's jar sends it back once; aiohttp keeps no jar of its own that would send it twice.
    assert s.requests[1].header("cookie") == ["session=abc"]


async def test_a_streamed_body_arrives_in_pieces_and_its_connection_is_reused() -> None:
    items = [{"id": i, "name": f"space-{i}" * 20} for i in range(3000)]
    payload = json.dumps({"value": items}).encode()

    async def listing(_: Seen, writer: asyncio.StreamWriter) -> bool:
        writer.write(response(200, payload, ("Content-Type", "application/json")))
        await writer.drain()
        return True

    async with server(listing) as s, build_http_client() as client:
        chunks = []
        async with client.stream("GET", f"{s.url}/drives") as answer:
            async for chunk in answer.aiter_bytes():
                chunks.append(chunk)
        (await client.get(f"{s.url}/again")).raise_for_status()
    assert b"".join(chunks) == payload
    assert len(chunks) > 1
    assert s.connections == 1


async def test_a_refused_connection_is_a_connect_error_not_a_timeout() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: the connection is refused
        async with build_http_client() as client:
            with pytest.raises(httpx.ConnectError) as refused:
                await client.get(f"http://127.0.0.1:{port}/x")
    assert not isinstance(refused.value, httpx.TimeoutException)
    assert refused.value.request.url.port == port


async def test_an_upstream_that_does_not_answer_in_time_is_a_read_timeout() -> None:
    async def silent(_: Seen, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(5)
        return False

    async with server(silent) as s, build_http_client(timeout=0.2) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(f"{s.url}/x")


async def test_a_connection_closed_without_an_answer_is_a_protocol_error() -> None:
    async def hang_up(_: Seen, writer: asyncio.StreamWriter) -> bool:
        return False

    async with server(hang_up) as s, build_http_client() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(f"{s.url}/x", json={})


async def test_a_body_cut_short_is_a_protocol_error() -> None:
    async def truncated(_: Seen, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        await writer.drain()
        return False

    async with server(truncated) as s, build_http_client() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(f"{s.url}/x")


def test_each_event_loop_gets_a_session_of_its_own() -> None:
    async def once(transport: AiohttpTransport) -> int:
        async with server(json_answer({"n": 1})) as s:
            client = httpx.AsyncClient(transport=transport)
            return int((await client.get(f"{s.url}/x")).json()["n"])

    transport = AiohttpTransport()
    assert asyncio.run(once(transport)) == 1
    assert asyncio.run(once(transport)) == 1  # the first loop's session is gone with its loop


_KEY = ConnectionKey("upstream.test", 443, True, True, None, None, None, None)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (aiohttp.ConnectionTimeoutError("connect"), httpx.ConnectTimeout),
        (aiohttp.SocketTimeoutError("read"), httpx.ReadTimeout),
        (aiohttp.ServerTimeoutError("read"), httpx.ReadTimeout),
        (aiohttp.ClientConnectorDNSError(_KEY, OSError(-2, "Name or service not known")), httpx.ConnectError),
        (aiohttp.ServerDisconnectedError(), httpx.RemoteProtocolError),
        (aiohttp.ClientPayloadError("cut short"), httpx.RemoteProtocolError),
        (aiohttp.ClientConnectionResetError("reset"), httpx.ReadError),
        (aiohttp.ClientOSError(104, "reset"), httpx.ReadError),
        (aiohttp.InvalidURL("nope://x"), httpx.UnsupportedProtocol),
        (LineTooLong("header line", "16384"), httpx.RemoteProtocolError),
    ],
)
def test_every_aiohttp_failure_maps_to_the_httpx_exception_of_its_kind(
    error: aiohttp.ClientError | HttpProcessingError, expected: type[httpx.TransportError]
) -> None:
    request = httpx.Request("GET", "http://upstream.test/x")
    mapped = map_error(error, request)
    assert type(mapped) is expected
    assert str(mapped)  # a message a human can act on, never empty
