"""Fixtures: a loopback authoritative DNS server per test, and a resolver that asks only it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tenantry.domains.resolver import Resolver
from tests.support.dns_server import DnsTestServer

# Short enough that a dropped query fails a test fast, long enough for a loaded CI machine's loopback.
LOOKUP_TIMEOUT = 0.4


@pytest.fixture
async def dns_server() -> AsyncIterator[DnsTestServer]:
    async with DnsTestServer() as server:
        yield server
    assert not server.errors, f"the test DNS server failed to answer: {server.errors}"


@pytest.fixture
def resolver(dns_server: DnsTestServer) -> Resolver:
    return Resolver([dns_server.nameserver], timeout=LOOKUP_TIMEOUT)
