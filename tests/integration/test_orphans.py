"""Orphans against the three sandboxes: objects a lost tenant row left behind are listed, adopted or deleted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import Request

from tenantry.auth.actor import Actor
from tenantry.config import Settings
from tenantry.container import Container
from tenantry.sandbox.suite import SandboxSuite
from tenantry.tenants.models import Tenant
from tests.support.api import api_client
from tests.support.stack import sandbox_suite, tenant_events, wait_for_tenant

pytestmark = pytest.mark.slow  # the whole product in-process against the sandboxes

ACME = {"slug": "acme", "name": "Acme Corp"}
BETA = {"slug": "beta", "name": "Beta Ltd"}
# A create of a project space (not a change of one) fails as a missing permission would: the files step stops
# without a space, so the tenant holds none until one is adopted.
SPACE_CREATE = r"^/graph/v1\.0/drives$"


async def lose_tenant_row(container: Container, slug: str) -> None:
    """Delete the tenant's row (its steps and events go with it) as a restore from an older backup would."""
    async with container.sessionmaker() as session:
        await session.execute(sa.delete(Tenant).where(Tenant.slug == slug))
        await session.commit()


async def orphans(client: httpx.AsyncClient) -> dict[str, list[dict[str, Any]]]:
    response = await client.get("/orphans")
    assert response.status_code == 200, response.text
    return {u["upstream"]: u["orphans"] for u in response.json()["upstreams"]}


def upstream_ids(suite: SandboxSuite) -> dict[str, list[str]]:
    return {
        "authentik": [g["pk"] for g in suite.authentik.groups()],
        "stalwart": [d["id"] for d in suite.stalwart.domains()],
        "ocis": [s["id"] for s in suite.ocis.spaces()],
    }


async def test_objects_a_lost_tenant_row_left_behind_are_listed_per_upstream(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, container):
        lost = (await client.post("/tenants", json=ACME)).json()
        assert lost["status"] == "active"
        left = upstream_ids(suite)
        assert await orphans(client) == {"authentik": [], "stalwart": [], "ocis": []}
        await lose_tenant_row(container, "acme")
        beta = await client.post("/tenants", json=BETA)
        assert beta.json()["status"] == "active", beta.text
        listed = await orphans(client)
    # A space names its tenant by the marker only; a group's attributes and a default domain's name suggest a slug.
    slugs = {"authentik": "acme", "stalwart": "acme", "ocis": None}
    for upstream, (object_id,) in left.items():
        (orphan,) = listed[upstream]  # beta's objects are held, so not listed
        assert (orphan["id"], orphan["tenantId"], orphan["tenantSlug"]) == (object_id, lost["id"], slugs[upstream])
        assert orphan["reason"] == f"no tenant has the id {lost['id']} its marker names (its row is gone)"
    assert listed["authentik"][0]["name"] == "tenant-acme"
    assert listed["stalwart"][0]["name"] == "acme.mail.example.test"


async def test_adopting_makes_a_new_tenant_use_the_orphan_instead_of_creating_another(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, container):
        await client.post("/tenants", json=ACME)
        left = upstream_ids(suite)
        await lose_tenant_row(container, "acme")
        suite.ocis.controls.fail(SPACE_CREATE, 403, method="POST")
        again = (await client.post("/tenants", json=ACME)).json()
        # The group's name is taken by a group marked for the lost tenant; the default mail domain is adopted
        # by its name (the operator's base domain is its marker); the space could not be created.
        assert again["provisioningStatus"] == {"authentik": "error", "stalwart": "ok", "ocis": "error"}, again
        listed = await orphans(client)
        assert [o["id"] for o in listed["authentik"]] == left["authentik"]
        assert listed["stalwart"] == []
        assert [o["id"] for o in listed["ocis"]] == left["ocis"]

        group = await client.post(f"/orphans/authentik/{left['authentik'][0]}/adopt", json={"slug": "acme"})
        assert group.status_code == 200, group.text
        assert group.json()["provisioningStatus"]["authentik"] == "ok"
        assert group.headers["ETag"]
        space = await client.post(f"/orphans/ocis/{left['ocis'][0]}/adopt", json={"slug": "acme"})
        assert space.status_code == 200, space.text
        body = await wait_for_tenant(client, "acme", lambda b: b["status"] == "active", what="active")
        suite.ocis.controls.clear_faults()
        assert await orphans(client) == {"authentik": [], "stalwart": [], "ocis": []}
        kinds = [e["kind"] for e in await tenant_events(client, "acme")]
    assert body["id"] == again["id"]
    assert upstream_ids(suite) == left  # the same objects: nothing new was created
    (marked,) = suite.authentik.groups()
    assert marked["attributes"]["tenant_id"] == again["id"]
    (files,) = suite.ocis.spaces()
    assert files["description"].endswith(f"[tenantry:tenant:{again['id']}]")
    assert kinds.count("orphan.adopted") == 2


async def test_a_tenant_that_holds_an_object_on_that_upstream_cannot_adopt_another(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, container):
        await client.post("/tenants", json=ACME)
        (orphan_pk,) = upstream_ids(suite)["authentik"]
        await lose_tenant_row(container, "acme")
        await client.post("/tenants", json=BETA)
        before = suite.authentik.groups()

        refused = await client.post(f"/orphans/authentik/{orphan_pk}/adopt", json={"slug": "beta"})
        unknown_tenant = await client.post(f"/orphans/authentik/{orphan_pk}/adopt", json={"slug": "nobody"})
        unknown_object = await client.post("/orphans/authentik/no-such-pk/adopt", json={"slug": "beta"})
        after = suite.authentik.groups()
        listed = await orphans(client)
    assert refused.status_code == 409, refused.text
    assert "'beta' already holds" in refused.json()["detail"]
    assert (unknown_tenant.status_code, unknown_object.status_code) == (404, 404)
    assert after == before
    assert [o["id"] for o in listed["authentik"]] == [orphan_pk]


async def test_deleting_an_orphan_removes_it_upstream_the_mail_domain_with_its_dkim_keys(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, container):
        await client.post("/tenants", json=ACME)
        left = upstream_ids(suite)
        (domain_id,) = left["stalwart"]
        assert suite.stalwart.dkim_keys(domain_id)
        await lose_tenant_row(container, "acme")

        answers = {upstream: await client.delete(f"/orphans/{upstream}/{ids[0]}") for upstream, ids in left.items()}
        gone = await client.delete(f"/orphans/ocis/{left['ocis'][0]}")
        listed = await orphans(client)
    for upstream, answer in answers.items():
        assert answer.status_code == 200, answer.text
        assert answer.json()["id"] == left[upstream][0]
    assert gone.status_code == 404
    assert upstream_ids(suite) == {"authentik": [], "stalwart": [], "ocis": []}
    assert suite.stalwart.dkim_keys(domain_id) == []
    assert listed == {"authentik": [], "stalwart": [], "ocis": []}


async def test_an_object_a_tenant_holds_is_no_orphan_and_cannot_be_deleted_but_its_duplicate_can(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, _):
        acme = (await client.post("/tenants", json=ACME)).json()
        (held,) = upstream_ids(suite)["authentik"]
        marker = {"tenant_slug": "acme", "tenant_id": acme["id"], "managed_by": "tenantry"}
        duplicate = suite.authentik.add_group("tenant-acme-copy", marker)["pk"]

        refused = await client.delete(f"/orphans/authentik/{held}")
        listed = await orphans(client)
        deleted = await client.delete(f"/orphans/authentik/{duplicate}")
        events = await tenant_events(client, "acme")
    assert refused.status_code == 409, refused.text
    assert refused.json()["detail"] == (
        f"authentik object tenant-acme ({held}) is not an orphan: tenant 'acme' holds it"
    )
    (orphan,) = listed["authentik"]
    assert (orphan["id"], orphan["tenantSlug"]) == (duplicate, "acme")
    assert orphan["reason"] == f"tenant 'acme' holds {held} instead"
    assert deleted.status_code == 200, deleted.text
    assert [g["pk"] for g in suite.authentik.groups()] == [held]
    (recorded,) = [e for e in events if e["kind"] == "orphan.deleted"]
    assert recorded["step"] == "authentik"
    assert duplicate in recorded["message"]


async def as_ordinary_user(_request: Request) -> Actor:
    return Actor(sub="bob", is_admin=False)


async def test_an_ordinary_user_gets_403_on_every_orphan_route(make_settings: Callable[..., Settings]) -> None:
    suite = sandbox_suite()
    settings = make_settings(**suite.settings())
    async with api_client(settings, transports=suite.transports(), actor_resolver=as_ordinary_user) as (client, _):
        listed = await client.get("/orphans")
        adopt = await client.post("/orphans/authentik/some-pk/adopt", json={"slug": "acme"})
        delete = await client.delete("/orphans/ocis/some-id")
    assert [r.status_code for r in (listed, adopt, delete)] == [403, 403, 403]
    assert listed.json()["error"] == "forbidden"
    assert suite.authentik.controls.requests() == []  # refused before any upstream is asked
