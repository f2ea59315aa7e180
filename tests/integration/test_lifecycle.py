"""The whole tenant lifecycle against the three sandboxes: suspend, resume, delete, restore, purge."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tenantry.config import Settings
from tenantry.sandbox.suite import SandboxSuite
from tests.support.api import api_client
from tests.support.stack import sandbox_suite, tenant_events, wait_for_tenant

pytestmark = pytest.mark.slow  # the whole product in-process, polling each tenant until its steps settle

ACME = {"slug": "acme", "name": "Acme Corp"}
DOMAIN = "acme.mail.example.test"


def upstream_state(suite: SandboxSuite) -> dict[str, Any]:
    """What the sandboxes hold of any tenant, less the servers' own change stamps."""

    def space(s: dict[str, Any]) -> dict[str, Any]:
        root = {k: v for k, v in s["root"].items() if k != "eTag"}
        return {**{k: v for k, v in s.items() if k not in {"lastModifiedDateTime", "root"}}, "root": root}

    return {
        "groups": suite.authentik.groups(),
        "domains": suite.stalwart.domains(),
        "spaces": [space(s) for s in suite.ocis.spaces()],
    }


async def settle(client: httpx.AsyncClient, what: str, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    return await wait_for_tenant(client, "acme", predicate, what=what)


def all_steps(status: str) -> Callable[[dict[str, Any]], bool]:
    return lambda body: all(s == status for s in body["provisioningStatus"].values())


async def test_a_full_cycle_create_patch_suspend_resume_delete_restore(make_settings: Callable[..., Settings]) -> None:
    suite = sandbox_suite()
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, _):
        created = await client.post("/tenants", json=ACME)
        assert created.json()["status"] == "active", created.text
        patched = await client.patch("/tenants/acme", json={"name": "Acme Corporation"})
        assert patched.status_code == 200
        await settle(client, "renamed", lambda b: b["status"] == "active" and b["generation"] == 2)
        before = upstream_state(suite)

        suspended = await client.post("/tenants/acme/suspend")
        assert suspended.status_code == 200, suspended.text
        body = await settle(client, "suspended", lambda b: b["status"] == "suspended" and all_steps("ok")(b))
        assert body["conditions"]["stalwart"]["reason"] == "Disabled"
        assert body["conditions"]["ocis"]["reason"] == "Disabled"
        (domain,) = suite.stalwart.domains()
        assert domain["isEnabled"] is False
        (space,) = suite.ocis.spaces()
        assert space["root"]["deleted"]["state"] == "trashed"
        (group,) = suite.authentik.groups()
        assert group["attributes"]["suspended"] is True
        assert body["conditions"]["authentik"]["status"] == "ok"
        assert (await client.post("/tenants/acme/suspend")).status_code == 200  # idempotent

        resumed = await client.post("/tenants/acme/resume")
        assert resumed.status_code == 200
        await settle(client, "resumed", lambda b: b["status"] == "active" and all_steps("ok")(b))
        assert upstream_state(suite) == before  # exactly as before the suspension

        deleted = await client.delete("/tenants/acme")
        assert deleted.status_code == 202, deleted.text
        assert deleted.json()["status"] == "deleting"
        await settle(client, "disabled for deletion", lambda b: b["conditions"]["ocis"]["reason"] == "Disabled")
        assert suite.stalwart.domains()[0]["isEnabled"] is False
        assert (await client.patch("/tenants/acme", json={"name": "x"})).status_code == 409

        restored = await client.post("/tenants/acme/restore")
        assert restored.status_code == 200, restored.text
        await settle(client, "restored", lambda b: b["status"] == "active" and all_steps("ok")(b))
        assert upstream_state(suite) == before
        kinds = [e["kind"] for e in await tenant_events(client, "acme") if e["kind"].startswith("tenant.")]
    assert kinds == [
        "tenant.created",
        "tenant.active",
        "tenant.updated",
        "tenant.suspended",
        "tenant.resumed",
        "tenant.delete_requested",
        "tenant.restored",
    ]


async def test_after_the_grace_period_everything_is_purged_and_the_tenant_becomes_a_tombstone(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    settings = make_settings(**suite.settings(), delete_grace_seconds=0.5)
    async with api_client(settings, transports=suite.transports()) as (client, _):
        created = (await client.post("/tenants", json=ACME)).json()
        assert (await client.delete("/tenants/acme")).status_code == 202
        body = await wait_for_tenant(client, "acme", lambda b: b["status"] == "deleted", what="purged", timeout=20)
        assert body["id"] == created["id"]
        assert upstream_state(suite) == {"groups": [], "domains": [], "spaces": []}
        assert (await client.post("/tenants/acme/restore")).status_code == 409
        events = [e["message"] for e in await tenant_events(client, "acme")]
        assert any("slug and mail domain are free" in m for m in events)
        # The slug and the domain are free again.
        again = await client.post("/tenants", json=ACME)
        assert again.status_code == 201, again.text
        assert again.json()["id"] != created["id"]
        assert again.json()["mailDomain"] == DOMAIN
        listed = (await client.get("/tenants")).json()
        tombstones = (await client.get("/tenants?status=deleted")).json()
    assert [t["id"] for t in listed["items"]] == [again.json()["id"]]
    assert [t["id"] for t in tombstones["items"]] == [created["id"]]


async def test_an_upstream_that_is_down_holds_the_deletion_and_it_completes_when_it_is_back(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, _):
        await client.post("/tenants", json=ACME)
        suite.ocis.controls.fail(r"^/graph/", 503)
        await client.delete("/tenants/acme?purge=now")
        body = await wait_for_tenant(
            client, "acme", lambda b: b["conditions"]["ocis"]["attempts"] >= 2, what="retrying the purge"
        )
        ocis = body["conditions"]["ocis"]
        assert (body["status"], ocis["status"], ocis["retryable"]) == ("deleting", "error", True)
        # Reverse order: with files not gone, mail and identity keep their objects (nothing orphaned).
        assert len(suite.stalwart.domains()) == 1
        assert len(suite.authentik.groups()) == 1
        suite.ocis.controls.clear_faults()
        await wait_for_tenant(client, "acme", lambda b: b["status"] == "deleted", what="purged", timeout=20)
    assert upstream_state(suite) == {"groups": [], "domains": [], "spaces": []}


async def test_purging_now_is_for_platform_admins_and_a_stale_if_match_is_412(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, _):
        created = await client.post("/tenants", json=ACME)
        tag = created.headers["ETag"]
        assert (await client.get("/tenants/acme")).headers["ETag"] == tag
        renamed = await client.patch("/tenants/acme", json={"name": "Acme 2"}, headers={"If-Match": tag})
        assert renamed.status_code == 200
        stale = await client.post("/tenants/acme/suspend", headers={"If-Match": tag})
        assert stale.status_code == 412
        assert stale.json()["error"] == "precondition_failed"
        assert (await client.get("/tenants/acme")).json()["status"] == "active"  # nothing changed
        fresh = (await client.get("/tenants/acme")).headers["ETag"]
        assert (await client.post("/tenants/acme/suspend", headers={"If-Match": fresh})).status_code == 200


async def test_a_create_retried_with_its_idempotency_key_creates_nothing_more(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, _):
        headers = {"Idempotency-Key": "create-acme-1"}
        first, second = await asyncio.gather(
            client.post("/tenants", json=ACME, headers=headers),
            client.post("/tenants", json=ACME, headers=headers),
        )
        statuses = sorted([first.status_code, second.status_code])
        replay = await client.post("/tenants", json=ACME, headers=headers)
        other_body = await client.post("/tenants", json={**ACME, "name": "Other"}, headers=headers)
        listed = (await client.get("/tenants", params={"count": "true"})).json()
    # Run at once: one creates; the other either replays it or is told the key is in use.
    assert statuses in ([201, 201], [201, 409]), (first.text, second.text)
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == (first if first.status_code == 201 else second).json()["id"]
    assert other_body.status_code == 422
    assert listed["total"] == 1
    assert len(suite.authentik.groups()) == 1
