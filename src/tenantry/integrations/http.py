"""The one place HTTP clients for upstreams are built: explicit timeouts and an optional private CA."""

from __future__ import annotations

import math
import ssl
import time
from datetime import UTC
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx


def build_http_client(
    *,
    timeout: float = 10.0,
    ca_bundle: Path | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    max_connections: int = 100,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for one upstream.

    ``ca_bundle`` adds a private CA (mkcert, a company CA) to the system trust store rather than replacing
    it; ``transport`` lets tests route to an in-process ASGI app.
    """
    verify: ssl.SSLContext | bool = True
    if ca_bundle is not None:
        context = ssl.create_default_context()
        context.load_verify_locations(cafile=str(ca_bundle))
        verify = context
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    return httpx.AsyncClient(timeout=httpx.Timeout(timeout), verify=verify, transport=transport, limits=limits)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent or bad.

    ``now`` is the current time as a Unix timestamp (defaults to the clock), used for the date form.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        # RFC 9110 dates are always GMT; a zone-less parse result means exactly that.
        timestamp = when.timestamp() if when.tzinfo is not None else when.replace(tzinfo=UTC).timestamp()
        seconds = timestamp - (time.time() if now is None else now)
    return max(0.0, seconds) if math.isfinite(seconds) else None
