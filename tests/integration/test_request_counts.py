"""How many requests provisioning a fresh tenant sends to authentik and Stalwart, read from the sandboxes' logs.

authentik: one POST creates the tenant's group; members are read (and PATCHed) only while a tenant is suspended
or resuming, so a fresh tenant needs no member request. Stalwart: one JMAP request creates the domain and reads
it back (``x:Domain/set`` + ``x:Domain/get`` of the creation id), and one reads the DKIM keys Stalwart made
meanwhile with the zone that lists them (``x:DkimSignature/query`` + ``/get`` + ``x:Domain/get``). The JMAP
session is discovered once per process (``/.well-known/jmap``, its redirect to ``/jmap/session``), not per tenant.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tenantry.config import Settings
from tenantry.sandbox.faults import LoggedRequest
from tenantry.sandbox.suite import SandboxSuite
from tests.support.api import api_client
from tests.support.stack import sandbox_suite

pytestmark = pytest.mark.slow  # the whole product in-process against the sandboxes

CREATE_AND_READ_BACK = ["x:Domain/set", "x:Domain/get"]
KEYS_AND_ZONE = ["x:DkimSignature/query", "x:DkimSignature/get", "x:Domain/get"]
SESSION = [("GET", "/.well-known/jmap"), ("GET", "/jmap/session")]


def _clear(suite: SandboxSuite) -> None:
    for controls in (suite.authentik.controls, suite.stalwart.controls, suite.ocis.controls):
        controls.clear_log()


def _authentik_api(suite: SandboxSuite) -> list[tuple[str, str]]:
    # Only the admin API: the issuer's endpoints (JWKS, tokens) serve Tenantry's own API authentication.
    return [(r.method, r.path) for r in suite.authentik.controls.requests(path=r"^/api/v3/")]


def _jmap_calls(requests: list[LoggedRequest]) -> list[list[str]]:
    bodies: list[Any] = [r.body for r in requests if r.method == "POST"]
    return [[name for name, _, _ in body["methodCalls"]] for body in bodies]


async def test_a_fresh_tenant_costs_one_authentik_request_and_two_jmap_requests(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()  # keys are made as soon as the domain exists, so the second request finds them
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, _):
        counted: list[tuple[list[tuple[str, str]], list[LoggedRequest]]] = []
        for slug in ("acme", "globex"):
            _clear(suite)
            created = await client.post("/tenants", json={"slug": slug, "name": slug.title()})
            assert created.status_code == 201, created.text
            assert created.json()["status"] == "active", created.json()
            counted.append((_authentik_api(suite), suite.stalwart.controls.requests()))

    for authentik, _ in counted:
        assert authentik == [("POST", "/api/v3/core/groups/")]
    (_, first), (_, second) = counted
    assert [(r.method, r.path) for r in first if r.method == "GET"] == SESSION
    assert _jmap_calls(first) == _jmap_calls(second) == [CREATE_AND_READ_BACK, KEYS_AND_ZONE]
    assert [r.method for r in second] == ["POST", "POST"]
    assert [r.status for r in first + second] == [307, 200, 200, 200, 200, 200]
