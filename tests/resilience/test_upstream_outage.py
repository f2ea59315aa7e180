"""Outage: the upstreams go down and come back empty (a restart that lost its state); the reconciler rebuilds.

The three sandboxes are served over loopback; each is stopped (its port refuses connections for a moment) and
a new, empty one is served on the same port with the same credentials. Half of the tenants are then repaired
by ``POST /tenants/{slug}/reconcile``, the rest by the periodic resync on their own.
"""

from __future__ import annotations

import asyncio

import pytest

from tenantry.config import Settings
from tests.support.api import api_client
from tests.support.resilience import (
    MAIL_BASE,
    not_exactly_one,
    statuses,
    step_attempts,
    unsettled_steps,
    upstream_objects,
    wait_for,
)
from tests.support.served import UPSTREAMS, served_sandboxes

pytestmark = pytest.mark.slow

TENANTS = 6
RESYNC = 2.0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_upstreams_restarted_empty_get_every_tenants_group_domain_with_dkim_and_space_back(
    database_url: str,
) -> None:
    with served_sandboxes() as served:
        settings = Settings(
            **served.suite.settings(),
            database_url=database_url,
            auth_enabled=False,
            mail_domain_base=MAIL_BASE,
            http_timeout_seconds=1,
            retry_base_seconds=0.1,
            retry_cap_seconds=0.5,
            resync_interval_seconds=RESYNC,
            full_resync_seconds=RESYNC,
            pending_poll_seconds=0.1,
            worker_poll_seconds=0.05,
            create_wait_seconds=5,
            dns_resolvers="127.0.0.1:9",
        )
        async with api_client(settings) as (client, container):
            created = [
                await client.post("/tenants", json={"slug": f"outage-{n}", "name": f"Outage {n}"})
                for n in range(TENANTS)
            ]
            assert [r.json()["status"] for r in created] == ["active"] * TENANTS, [r.text for r in created]
            tenants = {r.json()["id"]: r.json()["slug"] for r in created}
            assert not_exactly_one(upstream_objects(served.suite, tenants), tenants) == {}
            first_ids = {
                r.json()["slug"]: {name: r.json()["conditions"][name]["upstreamIds"] for name in UPSTREAMS}
                for r in created
            }

            for name in UPSTREAMS:
                served.stop(name)
            await asyncio.sleep(0.5)
            for name in UPSTREAMS:
                served.start_empty(name)
            assert upstream_objects(served.suite, tenants) == {name: {} for name in UPSTREAMS}

            forced = sorted(tenants.values())[: TENANTS // 2]
            answers = [await client.post(f"/tenants/{slug}/reconcile") for slug in forced]

            async def repaired() -> bool:
                objects = upstream_objects(served.suite, tenants)
                statuses_now = set((await statuses(container.sessionmaker)).values())
                return not_exactly_one(objects, tenants) == {} and statuses_now == {"active"}

            await wait_for(
                repaired,
                "every tenant's objects to be back",
                timeout=3 * RESYNC + 15,
                explain=lambda: unsettled_steps(container.sessionmaker),
            )
            bodies = {slug: (await client.get(f"/tenants/{slug}")).json() for slug in tenants.values()}
            attempts = await step_attempts(container.sessionmaker)
            suite = served.suite

    assert [a.status_code for a in answers] == [200] * len(forced), [a.text for a in answers]
    assert [a.json()["provisioningStatus"] for a in answers] == [dict.fromkeys(UPSTREAMS, "ok")] * len(forced)
    assert {status for by_tenant in attempts.values() for status, _ in by_tenant.values()} == {"ok"}
    for tenant_id, slug in tenants.items():
        ids = {name: bodies[slug]["conditions"][name]["upstreamIds"] for name in UPSTREAMS}
        group = suite.authentik.get_group(ids["authentik"]["groupPk"])
        assert group is not None
        assert (group["name"], group["attributes"]["tenant_id"]) == (f"tenant-{slug}", tenant_id)
        domains = [d for d in suite.stalwart.domains() if d["id"] == ids["stalwart"]["domainId"]]
        assert [d["name"] for d in domains] == [f"{slug}.{MAIL_BASE}"]
        assert suite.stalwart.dkim_keys(ids["stalwart"]["domainId"]), f"{slug}'s domain has no DKIM key"
        space = suite.ocis.get_space(ids["ocis"]["driveId"])
        assert space is not None
        assert tenant_id in space["description"]
        # Recreated, not merely believed to exist: the ids the tenant held before the outage are gone.
        assert ids["authentik"]["groupPk"] != first_ids[slug]["authentik"]["groupPk"]
        assert ids["ocis"]["driveId"] != first_ids[slug]["ocis"]["driveId"]
