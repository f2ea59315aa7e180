"""httpx's client API over aiohttp's connection pool and HTTP parser.

Every upstream client speaks ``httpx.AsyncClient``; on a real network this transport carries its requests,
because httpx's own transport (httpcore and h11, in pure Python) costs several times the CPU per request
(``bench/http_client.py``) and provisioning is a handful of requests per tenant. httpx still does everything
above the wire: URLs, headers, redirects, auth, cookies, decoding.

What maps where:

- timeouts: httpx's ``connect`` → aiohttp's ``sock_connect``, ``read`` → ``sock_read`` (each read),
  ``pool`` + ``connect`` → ``connect`` (waiting for a pooled connection, then connecting). aiohttp has no
  write timeout; a request body here is a small JSON document that the socket buffer takes at once.
- failures: every aiohttp error becomes the httpx exception a caller would have seen from httpx's own
  transport, so that ``TimeoutException`` still means "the upstream did not answer in time" and
  ``ConnectError`` still means "the request never left" (``map_error``).
- the body is handed over as a stream, read as it arrives (the oCIS space listing is parsed item by item);
  closing the response returns its connection to the pool.
- aiohttp keeps no cookies (httpx's client has the jar), decodes nothing (httpx decodes by
  ``Content-Encoding``), follows no redirect (httpx does), and reads no proxy from the environment (httpx
  mounts its own transport for proxied URLs).
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import AsyncIterator

import aiohttp
import httpx
from aiohttp.http_exceptions import HttpProcessingError
from yarl import URL

CHUNK_BYTES = 64 * 1024
# The longest header line and field an answer may carry: httpx's own parser (h11) takes up to 16 KiB of
# headers, aiohttp 8 KiB a line by default.
HEADER_BYTES = 16 * 1024


# aiohttp's parser raises HttpProcessingError (not a ClientError) for an answer it cannot read, e.g. a header
# longer than HEADER_BYTES.
_Failure = aiohttp.ClientError | HttpProcessingError
_FAILURES = (aiohttp.ClientError, HttpProcessingError)
_Kinds = type[_Failure] | tuple[type[_Failure], ...]
_PROTOCOL = (
    aiohttp.ServerDisconnectedError,
    aiohttp.ClientPayloadError,
    aiohttp.ClientResponseError,
    HttpProcessingError,
)

# Most specific first: aiohttp's connect timeout is also a server timeout, its refused connection an OS error.
_ERRORS: tuple[tuple[_Kinds, type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (_PROTOCOL, httpx.RemoteProtocolError),
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (aiohttp.ClientConnectionError, httpx.ReadError),
)


def map_error(exc: _Failure, request: httpx.Request) -> httpx.TransportError:
    """The httpx exception for an aiohttp failure, with aiohttp's message (or, lacking one, its kind). A parser's
    message quotes the answer it could not read, which may hold a secret (a cookie, a token): it is not kept."""
    if isinstance(exc, HttpProcessingError | aiohttp.ClientResponseError):
        message = f"{type(exc).__name__}: an answer that could not be read as HTTP/1.1 (from {request.url.host})"
    else:
        message = str(exc) or type(exc).__name__
    for kinds, mapped in _ERRORS:
        if isinstance(exc, kinds):
            return mapped(message, request=request)
    return httpx.TransportError(message)


@functools.lru_cache(maxsize=64)
def _client_timeout(connect: float | None, read: float | None, pool: float | None) -> aiohttp.ClientTimeout:
    """aiohttp's timeouts for httpx's (a request's ``timeout`` extension; see the module: no write timeout)."""
    waiting = None if connect is None or pool is None else connect + pool
    return aiohttp.ClientTimeout(total=None, connect=waiting, sock_connect=connect, sock_read=read)


class _Body(httpx.AsyncByteStream):
    """A response body as aiohttp reads it; closing it releases the connection."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(CHUNK_BYTES):
                yield chunk
        except _FAILURES as err:
            raise map_error(err, self._request) from err

    async def aclose(self) -> None:
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session per event loop, made on first use (a session belongs to the loop it was made in)."""

    def __init__(
        self, *, verify: ssl.SSLContext | bool = True, max_connections: int = 100, keepalive_seconds: float = 5.0
    ) -> None:
        self._verify = verify
        self._max_connections = max_connections
        self._keepalive_seconds = keepalive_seconds
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _session_here(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._session
        if session is None or session.closed or self._loop is not loop:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=0,
                keepalive_timeout=self._keepalive_seconds,
                ssl=self._verify,
            )
            session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                trust_env=False,
                timeout=aiohttp.ClientTimeout(),
                max_line_size=HEADER_BYTES,
                max_field_size=HEADER_BYTES,
            )
            self._session, self._loop = session, loop
        return session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session_here()
        body = await request.aread()
        timeout = request.extensions.get("timeout", {})
        try:
            response = await session.request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=request.headers.multi_items(),
                data=body or None,
                allow_redirects=False,
                timeout=_client_timeout(timeout.get("connect"), timeout.get("read"), timeout.get("pool")),
            )
        except _FAILURES as err:
            raise map_error(err, request) from err
        extensions = {"http_version": b"HTTP/1.1", "reason_phrase": (response.reason or "").encode("ascii", "replace")}
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=_Body(response, request),
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed and self._loop is asyncio.get_running_loop():
            await session.close()
