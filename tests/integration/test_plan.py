"""The dry run: what a reconcile would change in each upstream, read from the sandboxes without a write."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tenantry.config import Settings
from tenantry.integrations.stalwart.client import StalwartClient
from tenantry.integrations.stalwart.models import DomainUpdate
from tenantry.sandbox.suite import SandboxSuite
from tests.support.api import api_client
from tests.support.stack import sandbox_suite

pytestmark = pytest.mark.slow  # the whole product in-process, reconciling each tenant before planning it

ACME = {"slug": "acme", "name": "Acme Corp"}


def writes(suite: SandboxSuite) -> int:
    """Every write any sandbox has been asked for: REST writes, and JMAP calls that set something."""
    rest = [
        r
        for controls in (suite.authentik.controls, suite.ocis.controls)
        for r in controls.requests()
        if r.method in {"POST", "PUT", "PATCH", "DELETE"} and not r.path.startswith("/_sandbox")
    ]
    jmap = [
        name
        for r in suite.stalwart.controls.requests("POST", r"^/jmap/?$")
        if isinstance(r.body, dict)
        for name, _, _ in r.body.get("methodCalls", [])
        if name.endswith("/set")
    ]
    return len(rest) + len(jmap)


def actions(plan: dict[str, Any]) -> dict[str, list[str]]:
    return {s["step"]: [c["action"] for c in s["changes"]] for s in plan["steps"]}


async def test_the_plan_of_an_untouched_active_tenant_is_all_unchanged_and_writes_nothing(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, _):
        assert (await client.post("/tenants", json=ACME)).json()["status"] == "active"
        before = writes(suite)
        plan = await client.get("/tenants/acme/plan")
        assert plan.status_code == 200, plan.text
        after = writes(suite)
    body = plan.json()
    assert actions(body) == {"authentik": ["unchanged"], "stalwart": ["unchanged"], "ocis": ["unchanged"]}
    assert all(s["error"] is None for s in body["steps"])
    assert after == before


async def test_drift_and_a_deletion_plan_what_they_would_change_and_remove(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, _):
        await client.post("/tenants", json=ACME)
        await client.post("/tenants/acme/suspend")
        suspended = (await client.get("/tenants/acme/plan")).json()
        # Someone enables the suspended tenant's domain again in Stalwart's own console: drift to repair.
        (domain,) = suite.stalwart.domains()
        async with httpx.AsyncClient(transport=suite.transports()["stalwart"]) as http:
            console = StalwartClient(http, suite.urls["stalwart"], api_key=suite.credentials.stalwart_api_key)
            await console.update_domain(domain["id"], DomainUpdate(is_enabled=True))
        before = writes(suite)
        drifted = (await client.get("/tenants/acme/plan")).json()
        after_plan = writes(suite)
        await client.delete("/tenants/acme")
        between = writes(suite)
        deleting = (await client.get("/tenants/acme/plan")).json()
        assert writes(suite) == between
    assert actions(suspended) == {"authentik": ["unchanged"], "stalwart": ["unchanged"], "ocis": ["unchanged"]}
    mail = next(s for s in drifted["steps"] if s["step"] == "stalwart")
    assert [c["action"] for c in mail["changes"]] == ["update"]
    assert mail["changes"][0]["changes"] == {"isEnabled": {"now": True, "wanted": False}}
    assert after_plan == before
    assert actions(deleting) == {"authentik": ["delete"], "stalwart": ["delete"], "ocis": ["delete"]}
    assert deleting["status"] == "deleting"


async def test_an_unproven_custom_domain_plans_its_creation_and_says_what_it_waits_for(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, _):
        await client.post("/tenants", json={**ACME, "mailDomain": "acme-corp.test"})
        plan = (await client.get("/tenants/acme/plan")).json()
        shown = await client.get("/tenants/nobody/plan")
    mail = next(s for s in plan["steps"] if s["step"] == "stalwart")
    assert [c["action"] for c in mail["changes"]] == ["create"]
    assert re.search(r"waits until acme-corp\.test is proven", mail["note"])
    assert shown.status_code == 404
