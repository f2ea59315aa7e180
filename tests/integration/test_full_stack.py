"""The whole product in-process: API, reconciler and the real adapters against the three sandboxes."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tenantry.config import Settings
from tenantry.sandbox.ocis_model import MANAGER
from tests.support.api import api_client
from tests.support.stack import sandbox_suite

pytestmark = pytest.mark.slow  # the whole product in-process: API, worker polling, three sandboxes


async def test_a_new_tenant_ends_active_with_every_upstream_holding_its_objects(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    settings = make_settings(**suite.settings())
    async with api_client(settings, transports=suite.transports()) as (client, _):
        created = await client.post("/tenants", json={"slug": "acme", "name": "Acme Corp"})
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["status"] == "active", body
        assert body["provisioningStatus"] == {"authentik": "ok", "stalwart": "ok", "ocis": "ok"}
        group_pk = body["conditions"]["authentik"]["upstreamIds"]["groupPk"]
        domain_id = body["conditions"]["stalwart"]["upstreamIds"]["domainId"]
        drive_id = body["conditions"]["ocis"]["upstreamIds"]["driveId"]
        dns = (await client.get("/tenants/acme/dns")).json()
        zone = (await client.get("/tenants/acme/dns", params={"format": "zone"})).text

    group = suite.authentik.get_group(group_pk)
    assert group is not None
    assert group["attributes"]["tenant_id"] == body["id"]
    assert [d["name"] for d in suite.stalwart.domains() if d["id"] == domain_id] == ["acme.mail.example.test"]
    space = suite.ocis.get_space(drive_id)
    assert space is not None
    assert space["quota"]["total"] == settings.default_quota_bytes
    purposes = {r["purpose"] for r in dns["records"]}
    assert {"MX", "SPF", "DKIM"} <= purposes
    assert "_domainkey" in zone


@pytest.mark.parametrize("ocis_auth", ["app-token", "client-credentials"])
async def test_each_ocis_authentication_mode_creates_the_space_as_its_service_identity(
    make_settings: Callable[..., Settings], ocis_auth: str
) -> None:
    suite = sandbox_suite()
    creds = suite.credentials
    # The space's creator becomes its Manager, so the grant shows which identity oCIS saw.
    expected_user = creds.ocis_username if ocis_auth == "app-token" else f"ak-{creds.ocis_client_id}-client_credentials"
    settings = make_settings(**suite.settings(ocis_auth=ocis_auth))
    async with api_client(settings, transports=suite.transports()) as (client, _):
        created = await client.post("/tenants", json={"slug": "acme", "name": "Acme Corp"})

    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "active", body
    assert body["conditions"]["ocis"]["status"] == "ok"
    drive_id = body["conditions"]["ocis"]["upstreamIds"]["driveId"]
    managers = [
        p["grantedToV2"]["user"]["displayName"]
        for p in suite.ocis.permissions(drive_id)
        if p["roles"] == [MANAGER] and "user" in p["grantedToV2"]
    ]
    assert managers == [expected_user]
    token_requests = suite.authentik.controls.requests("POST", r"^/application/o/token/$")
    if ocis_auth == "client-credentials":
        assert token_requests, "no token was fetched from the issuer"
        assert all(r.status == 200 for r in token_requests)
    else:
        assert token_requests == []


async def test_readyz_names_the_store_and_each_upstream_as_ok(make_settings: Callable[..., Settings]) -> None:
    suite = sandbox_suite()
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, _):
        response = await client.get("/readyz")

    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ready",
        "checks": {
            "store": {"status": "ok"},
            "authentik": {"status": "ok"},
            "stalwart": {"status": "ok"},
            "ocis": {"status": "ok"},
        },
    }


@pytest.mark.parametrize("failing", ["authentik", "stalwart", "ocis"])
async def test_readyz_answers_503_naming_the_one_upstream_that_fails(
    make_settings: Callable[..., Settings], failing: str
) -> None:
    suite = sandbox_suite()
    controls = {
        "authentik": suite.authentik.controls,
        "stalwart": suite.stalwart.controls,
        "ocis": suite.ocis.controls,
    }[failing]
    controls.fail(r"^/(api|jmap|graph)", 503)
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, _):
        response = await client.get("/readyz")

    assert response.status_code == 503, response.text
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"][failing]["status"] == "unavailable"
    assert "503" in body["checks"][failing]["message"]
    healthy = {name for name, check in body["checks"].items() if check["status"] == "ok"}
    assert healthy == {"store", "authentik", "stalwart", "ocis"} - {failing}
