"""Tenant admins: people the owner lets manage a tenant; everyone else still sees nothing of it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tenantry.config import Settings
from tests.support.auth import Callers, authed_api, sandbox_suite

pytestmark = pytest.mark.slow  # the API with the sandbox OIDC issuer (an RSA key per test) and the worker


async def test_an_admin_added_by_the_owner_sees_and_manages_the_tenant_and_loses_it_when_removed(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    who = Callers(suite)
    async with authed_api(make_settings, suite) as (client, _):
        assert (await client.post("/tenants", headers=who.b, json={"slug": "bees", "name": "Bees"})).status_code == 201
        assert (await client.get("/tenants/bees", headers=who.a)).status_code == 404
        assert (await client.put(f"/tenants/bees/admins/{who.b_sub}x", headers=who.a)).status_code == 404

        added = await client.put(f"/tenants/bees/admins/{who.a_sub}", headers=who.b)
        assert added.status_code == 201, added.text
        assert added.json()["owner"] == who.b_sub
        assert [a["sub"] for a in added.json()["admins"]] == [who.a_sub]
        assert added.json()["admins"][0]["addedBy"] == who.b_sub
        again = await client.put(f"/tenants/bees/admins/{who.a_sub}", headers=who.b)
        assert again.status_code == 200
        assert len(again.json()["admins"]) == 1

        assert [t["slug"] for t in (await client.get("/tenants", headers=who.a)).json()["items"]] == ["bees"]
        renamed = await client.patch("/tenants/bees", headers=who.a, json={"name": "Busy Bees"})
        assert renamed.status_code == 200
        assert renamed.json()["updatedBy"] == who.a_sub

        owner_removal = await client.delete(f"/tenants/bees/admins/{who.b_sub}", headers=who.a)
        assert owner_removal.status_code == 409
        removed = await client.delete(f"/tenants/bees/admins/{who.a_sub}", headers=who.b)
        assert removed.status_code == 204
        assert (await client.delete(f"/tenants/bees/admins/{who.a_sub}", headers=who.b)).status_code == 404
        assert (await client.get("/tenants/bees", headers=who.a)).status_code == 404
        assert (await client.get("/tenants", headers=who.a)).json()["items"] == []
        kinds = [e["kind"] for e in (await client.get("/tenants/bees/events", headers=who.b)).json()]
    assert "tenant.admin_added" in kinds
    assert "tenant.admin_removed" in kinds


async def test_a_platform_admin_manages_the_admins_of_any_tenant(make_settings: Callable[..., Settings]) -> None:
    suite = sandbox_suite()
    who = Callers(suite)
    async with authed_api(make_settings, suite) as (client, _):
        await client.post("/tenants", headers=who.b, json={"slug": "bees", "name": "Bees"})
        added = await client.put(f"/tenants/bees/admins/{who.a_sub}", headers=who.admin)
        assert added.status_code == 201
        assert (await client.get("/tenants/bees", headers=who.a)).status_code == 200
        listing = await client.get("/tenants/bees/admins", headers=who.a)
    assert listing.json()["owner"] == who.b_sub


async def test_an_admin_subject_with_whitespace_is_refused(make_settings: Callable[..., Settings]) -> None:
    suite = sandbox_suite()
    who = Callers(suite)
    async with authed_api(make_settings, suite) as (client, _):
        await client.post("/tenants", headers=who.b, json={"slug": "bees", "name": "Bees"})
        response = await client.put("/tenants/bees/admins/two%20words", headers=who.b)
        assert response.status_code == 422
        assert (await client.get("/tenants/bees/admins", headers=who.b)).json()["admins"] == []
