"""The bulk resync against the three sandboxes: one listing per upstream, only drifted tenants woken, empty
duplicates removed, others reported; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx

from tenantry.config import Settings
from tenantry.container import Container
from tenantry.db.base import utcnow
from tenantry.integrations.stalwart.client import StalwartClient
from tenantry.integrations.stalwart.models import DomainUpdate
from tenantry.provisioning.worker import RESYNC_LOCK
from tenantry.sandbox.suite import SandboxSuite
from tenantry.tenants.models import TenantStep
from tests.support.api import api_client
from tests.support.resilience import wait_for
from tests.support.stack import sandbox_suite, tenant_events

SLUGS = ["alpha", "bravo", "charlie", "delta"]


async def create_all(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    made = {}
    for slug in SLUGS:
        response = await client.post("/tenants", json={"slug": slug, "name": slug.title()})
        assert response.status_code == 201, response.text
        assert response.json()["status"] == "active", response.text
        made[slug] = response.json()
    return made


def requests_since(suite: SandboxSuite, marks: dict[str, int]) -> dict[str, list[str]]:
    logs = {"authentik": suite.authentik.controls, "stalwart": suite.stalwart.controls, "ocis": suite.ocis.controls}
    return {name: [f"{r.method} {r.path}" for r in log.requests()[marks[name] :]] for name, log in logs.items()}


def marks_now(suite: SandboxSuite) -> dict[str, int]:
    return {
        "authentik": len(suite.authentik.controls.requests()),
        "stalwart": len(suite.stalwart.controls.requests()),
        "ocis": len(suite.ocis.controls.requests()),
    }


async def step_row(container: Container, tenant_id: str, step: str) -> TenantStep:
    async with container.sessionmaker() as session:
        row = await session.get(TenantStep, (tenant_id, step))
        assert row is not None
        return row


async def test_healthy_tenants_cost_one_listing_per_upstream_and_nothing_is_woken(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, container):
        made = await create_all(client)
        before = {slug: (await step_row(container, t["id"], "ocis")).next_attempt_at for slug, t in made.items()}
        marks = marks_now(suite)
        report = await container.resync().run_once()
        sent = requests_since(suite, marks)
        after = {slug: (await step_row(container, t["id"], "ocis")).next_attempt_at for slug, t in made.items()}

    assert report.listed == {"authentik": 4, "stalwart": 4, "ocis": 4}
    assert (report.compared, report.drifted, report.removed, report.kept, report.failed) == (12, [], [], [], {})
    assert after == before  # nobody was made due
    # One listing each; no request names a single tenant's object.
    assert [r.split("?")[0] for r in sent["authentik"]] == ["GET /api/v3/core/groups/"]
    assert all(r.startswith("POST /jmap") for r in sent["stalwart"]), sent["stalwart"]
    assert len(sent["stalwart"]) <= 3  # the listing's own JMAP requests (query, then gets), not one per tenant
    assert sent["ocis"] == ["GET /graph/v1.0/drives"]


async def test_drift_out_of_band_wakes_only_that_tenant_and_the_worker_repairs_it(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, container):
        made = await create_all(client)
        bravo_drive = made["bravo"]["conditions"]["ocis"]["upstreamIds"]["driveId"]
        await change_quota(suite, bravo_drive, 1234)  # someone changed the quota by hand
        charlie_group = made["charlie"]["conditions"]["authentik"]["upstreamIds"]["groupPk"]
        suite.authentik.delete_group(charlie_group)  # and deleted a group

        started = utcnow()
        report = await container.resync().run_once()
        due = {slug: (await step_row(container, t["id"], "ocis")).next_attempt_at for slug, t in made.items()}
        repaired = await client.post("/tenants/bravo/reconcile")
        rebuilt = await client.post("/tenants/charlie/reconcile")
        events = await tenant_events(client, "bravo")

    drifted = {(made_slug(made, t), step) for t, step, _ in report.drifted}
    assert drifted == {("bravo", "ocis"), ("charlie", "authentik")}
    assert due["bravo"] is not None
    assert due["bravo"] <= utcnow()  # woken now
    for slug in ("alpha", "delta"):  # in sync: still not due before the full resync period
        assert due[slug] is not None
        assert due[slug] > started + timedelta(hours=1)
    assert repaired.json()["conditions"]["ocis"]["status"] == "ok"
    assert suite.ocis.get_space(bravo_drive)["quota"]["total"] == made["bravo"]["quotaBytes"]  # type: ignore[index]
    assert rebuilt.json()["conditions"]["authentik"]["status"] == "ok"
    assert any(e["kind"] == "step.drift" and "quota of 1234 bytes" in e["message"] for e in events), events


async def test_an_empty_duplicate_space_is_removed_and_one_holding_data_is_reported_once(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, container):
        made = await create_all(client)
        marker = lambda slug: f"[tenantry:tenant:{made[slug]['id']}]"  # noqa: E731
        empty = suite.ocis.add_space("Alpha", description=f"Workspace files for Alpha {marker('alpha')}", quota=10)
        full = suite.ocis.add_space("Delta", description=f"Workspace files for Delta {marker('delta')}", quota=10)
        suite.ocis.set_usage(full["id"], 4096)

        first = await container.resync().run_once()
        second = await container.resync().run_once()
        delta_step = await step_row(container, made["delta"]["id"], "ocis")
        delta_events = await tenant_events(client, "delta")
        alpha_events = await tenant_events(client, "alpha")
        alpha = await client.get("/tenants/alpha")

    assert [(made_slug(made, t), s, o) for t, s, o in first.removed] == [("alpha", "ocis", empty["id"])]
    assert suite.ocis.get_space(empty["id"]) is None
    assert [(made_slug(made, t), s, o) for t, s, o in first.kept] == [("delta", "ocis", full["id"])]
    assert suite.ocis.get_space(full["id"]) is not None  # holds data: never deleted blindly
    assert delta_step.data["duplicates"] == [full["id"]]
    duplicate_notes = [e["message"] for e in delta_events if e["kind"] == "step.duplicate"]
    assert len(duplicate_notes) == 1  # the second pass adds none
    assert duplicate_notes[0].startswith(full["id"])
    assert second.kept == first.kept
    assert second.removed == []
    assert any(e["kind"] == "step.change" and empty["id"] in e["message"] for e in alpha_events)
    assert alpha.json()["conditions"]["ocis"]["status"] == "ok"


async def test_one_worker_of_many_runs_the_resync(make_settings: Callable[..., Settings]) -> None:
    suite = sandbox_suite()
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, container):
        await create_all(client)
        first, second = container.worker(owner="worker:a"), container.worker(owner="worker:b")
        ran_first = await first.resync_once()
        ran_second = await second.resync_once()
        again = await first.resync_once()
        held = await container.leases.hold_lock(RESYNC_LOCK, "worker:b", timedelta(seconds=1))

    assert ran_first is not None
    assert ran_second is None  # the lock is worker:a's
    assert again is not None
    assert held is False


async def test_a_renamed_group_and_a_domain_disabled_out_of_band_are_drift(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    settings = suite.settings()
    async with api_client(make_settings(**settings), transports=suite.transports()) as (client, container):
        made = await create_all(client)
        group = made["alpha"]["conditions"]["authentik"]["upstreamIds"]["groupPk"]
        headers = {"Authorization": f"Bearer {settings['authentik_token']}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=suite.authentik.app)) as http:
            renamed = await http.patch(
                f"http://authentik.test/api/v3/core/groups/{group}/",
                json={"name": "someone-renamed-it"},
                headers=headers,
            )
            assert renamed.status_code == 200, renamed.text
        domain = made["delta"]["conditions"]["stalwart"]["upstreamIds"]["domainId"]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=suite.stalwart.app)) as http:
            stalwart = StalwartClient(http, "http://stalwart.test", api_key=settings["stalwart_api_key"])
            await stalwart.update_domain(domain, DomainUpdate(is_enabled=False))

        report = await container.resync().run_once()
        repaired = [await client.post(f"/tenants/{slug}/reconcile") for slug in ("alpha", "delta")]

    drifted = {(made_slug(made, t), step): why for t, step, why in report.drifted}
    assert set(drifted) == {("alpha", "authentik"), ("delta", "stalwart")}
    assert "name" in drifted[("alpha", "authentik")]
    assert "disabled out of band" in drifted[("delta", "stalwart")]
    assert [r.json()["status"] for r in repaired] == ["active", "active"]
    assert [g["name"] for g in suite.authentik.groups() if g["pk"] == group] == ["tenant-alpha"]
    assert [d["isEnabled"] for d in suite.stalwart.domains() if d["id"] == domain] == [True]


def made_slug(made: dict[str, dict[str, Any]], tenant_id: str) -> str:
    return next(slug for slug, t in made.items() if t["id"] == tenant_id)


async def change_quota(suite: SandboxSuite, drive_id: str, quota: int) -> None:
    """PATCH the space's quota through oCIS's API, as an admin changing it by hand would."""
    settings = suite.settings()
    auth = httpx.BasicAuth(settings["ocis_username"], settings["ocis_app_token"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=suite.ocis.app), auth=auth) as http:
        response = await http.patch(
            f"http://ocis.test/graph/v1.0/drives/{quote(drive_id, safe='')}", json={"quota": {"total": quota}}
        )
    assert response.status_code == 200, response.text


async def test_a_requested_pass_runs_now_instead_of_at_the_end_of_the_interval(
    make_settings: Callable[..., Settings],
) -> None:
    """What `tenantry worker` does on SIGUSR1: a pass at once, though the interval is an hour."""
    suite = sandbox_suite()
    settings = make_settings(**suite.settings(), resync_interval_seconds=3600)
    async with api_client(settings, transports=suite.transports()) as (client, container):
        await create_all(client)
        worker = container.worker(owner="worker:asked")
        running = asyncio.create_task(worker.run())
        try:
            marks = marks_now(suite)
            await asyncio.sleep(0.5)
            unasked = requests_since(suite, marks)
            worker.resync_soon()

            async def listed() -> bool:
                return "GET /graph/v1.0/drives" in requests_since(suite, marks)["ocis"]

            await wait_for(listed, "the requested resync pass", timeout=10)
        finally:
            worker.stop()
            await running

    assert "GET /graph/v1.0/drives" not in unasked["ocis"]  # no pass before it was asked for
    assert [r.split("?")[0] for r in requests_since(suite, marks)["authentik"]] == ["GET /api/v3/core/groups/"]
