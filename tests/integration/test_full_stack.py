"""The whole product in-process: API, reconciler and the real adapters against the three sandboxes."""

from __future__ import annotations

from collections.abc import Callable

from tenantry.config import Settings
from tenantry.sandbox.suite import SandboxSuite
from tests.support.api import api_client


def sandbox_suite() -> SandboxSuite:
    return SandboxSuite(authentik_url="http://authentik.test", stalwart_url="http://stalwart.test",
                        ocis_url="http://ocis.test", dkim_delay=0.0)


async def test_a_new_tenant_ends_active_with_every_upstream_holding_its_objects(
        make_settings: Callable[..., Settings]) -> None:
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
