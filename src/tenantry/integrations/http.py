"""The one place HTTP clients for upstreams are built: explicit timeouts and an optional private CA."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx

from tenantry.integrations.transport import AiohttpTransport


def build_http_client(
    *,
    timeout: float = 10.0,
    ca_bundle: Path | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    max_connections: int = 100,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for one upstream.

    ``ca_bundle`` adds a private CA (mkcert, a company CA) to the system trust store rather than replacing
    it; ``transport`` lets tests route to an in-process ASGI app. Without one, requests go through
    :class:`~tenantry.integrations.transport.AiohttpTransport`.
    """
    verify: ssl.SSLContext | bool = True
    if ca_bundle is not None:
        context = ssl.create_default_context()
        context.load_verify_locations(cafile=str(ca_bundle))
        verify = context
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    if transport is None:
        transport = AiohttpTransport(verify=verify, max_connections=max_connections)
    return httpx.AsyncClient(timeout=httpx.Timeout(timeout), verify=verify, transport=transport, limits=limits)
