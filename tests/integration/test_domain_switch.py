"""Switching a live tenant's mail domain, planned then applied, against the sandboxes and a loopback DNS server.

The Stalwart domain is renamed in place (its accounts and keys move with it) and the old name stays an
alias until the tenant releases it, so no mail is lost during the switch.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tenantry.config import Settings
from tests.support.api import api_client
from tests.support.dns_server import DnsTestServer
from tests.support.stack import sandbox_suite, tenant_events, wait_for_tenant

pytestmark = pytest.mark.slow  # the whole product in-process, polling each tenant until its steps settle

PLATFORM = "acme.mail.example.test"
CUSTOM = "acme-corp.test"


async def test_a_tenant_moves_to_a_proven_custom_domain_and_back_without_losing_its_old_name(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    async with (
        DnsTestServer() as dns_server,
        api_client(
            make_settings(**suite.settings(), dns_resolvers=dns_server.nameserver), transports=suite.transports()
        ) as (client, _),
    ):
        created = await client.post("/tenants", json={"slug": "acme", "name": "Acme"})
        assert created.json()["status"] == "active", created.text
        (before,) = suite.stalwart.domains()

        # Plan: the custom domain is not proven yet, so nothing can be applied; the plan says what to publish.
        plan = (await client.post("/tenants/acme/domain/plan", json={"mailDomain": CUSTOM})).json()
        assert (plan["current"], plan["target"], plan["ready"]) == (PLATFORM, CUSTOM, False)
        token = plan["targetClaim"]["challenge"]["value"]
        assert f"_tenantry-challenge.{CUSTOM}." in plan["blockers"][0]
        refused = await client.post("/tenants/acme/domain/apply", json={"mailDomain": CUSTOM})
        assert refused.status_code == 409
        assert refused.json()["detail"]["blockers"] == plan["blockers"]
        assert suite.stalwart.domains() == [before]

        dns_server.set(f"_tenantry-challenge.{CUSTOM}.", "TXT", [token])
        plan = (await client.post("/tenants/acme/domain/plan", json={"mailDomain": CUSTOM})).json()
        assert plan["ready"] is True, plan
        assert plan["targetClaim"]["status"] == "verified"
        assert any(f"keep {PLATFORM} as an alias" in action for action in plan["actions"])
        assert suite.stalwart.domains() == [before]  # planning changes nothing upstream

        applied = await client.post("/tenants/acme/domain/apply", json={"mailDomain": CUSTOM})
        assert applied.status_code == 200, applied.text
        body = await wait_for_tenant(
            client, "acme", lambda b: b["mailDomain"] == CUSTOM and b["status"] == "active", what="switched"
        )
        assert body["conditions"]["stalwart"]["upstreamIds"] == {"domainId": before["id"]}
        (after,) = suite.stalwart.domains()
        assert (after["id"], after["name"], after["aliases"]) == (before["id"], CUSTOM, {PLATFORM: True})
        dns = (await client.get("/tenants/acme/dns")).json()
        assert dns["domain"] == CUSTOM
        assert any(r["name"] == f"{CUSTOM}." and r["purpose"] == "MX" for r in dns["records"])
        events = [e["message"] for e in await tenant_events(client, "acme")]
        assert f"mail domain switched from {PLATFORM} to {CUSTOM}" in events

        # And back: the platform domain was kept (as an alias), so that plan is ready at once.
        back = (await client.post("/tenants/acme/domain/plan", json={"mailDomain": PLATFORM})).json()
        assert back["ready"] is True, back
        assert (await client.post("/tenants/acme/domain/apply", json={"mailDomain": PLATFORM})).status_code == 200
        await wait_for_tenant(client, "acme", lambda b: b["mailDomain"] == PLATFORM, what="switched back")
        (again,) = suite.stalwart.domains()
        assert (again["id"], again["name"], again["aliases"]) == (before["id"], PLATFORM, {CUSTOM: True})

        # Releasing the custom name drops the alias and frees the name.
        released = await client.delete(f"/tenants/acme/domain/aliases/{CUSTOM}")
        assert released.status_code == 200, released.text
        await wait_for_tenant(
            client, "acme", lambda b: b["conditions"]["stalwart"]["status"] == "ok", what="alias released"
        )
        assert suite.stalwart.domains()[0].get("aliases", {}) == {}
        assert (await client.delete(f"/tenants/acme/domain/aliases/{CUSTOM}")).status_code == 404
        other = await client.post("/tenants", json={"slug": "other", "name": "Other", "mailDomain": CUSTOM})
        assert other.status_code == 201, other.text


async def test_switching_to_a_name_another_tenant_holds_or_to_the_current_domain_is_refused(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, _):
        await client.post("/tenants", json={"slug": "acme", "name": "Acme"})
        await client.post("/tenants", json={"slug": "rival", "name": "R", "mailDomain": CUSTOM, "verify": False})
        taken = await client.post("/tenants/acme/domain/plan", json={"mailDomain": CUSTOM})
        assert taken.status_code == 409
        other_platform = await client.post("/tenants/acme/domain/plan", json={"mailDomain": "rival.mail.example.test"})
        assert other_platform.status_code == 422
        same = (await client.post("/tenants/acme/domain/plan", json={"mailDomain": PLATFORM})).json()
        assert same["ready"] is False
        assert same["blockers"] == [f"{PLATFORM} is already the mail domain"]
