"""The sandbox suite's wiring: what its Stalwart tells every tenant to publish in DNS."""

from __future__ import annotations

from typing import Any

import httpx

from tenantry.sandbox.suite import SandboxSuite

MAIL_HOST = "mail.example.test."


async def _zone(client: httpx.AsyncClient, domain_id: str) -> str:
    response = await client.post(
        "/jmap/",
        json={
            "using": ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"],
            "methodCalls": [["x:Domain/get", {"ids": [domain_id], "properties": ["dnsZoneFile"]}, "c"]],
        },
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["methodResponses"][0][1]
    zone: str = result["list"][0]["dnsZoneFile"]
    return zone


async def test_every_tenant_zone_points_mx_cname_and_srv_at_the_mail_servers_own_host() -> None:
    suite = SandboxSuite(
        authentik_url="http://authentik.test", stalwart_url="http://stalwart.test", ocis_url="http://ocis.test"
    )
    first = suite.stalwart.add_domain("acme.mail.example.test")
    second = suite.stalwart.add_domain("globex.example.org")
    async with httpx.AsyncClient(
        transport=suite.transports()["stalwart"],
        base_url="http://stalwart.test",
        headers={"Authorization": f"Bearer {suite.credentials.stalwart_api_key}"},
    ) as c:
        zones = {"acme.mail.example.test": await _zone(c, first), "globex.example.org": await _zone(c, second)}

    for name, zone in zones.items():
        assert f"{name}. IN MX 10 {MAIL_HOST}" in zone
        assert f"autoconfig.{name}. IN CNAME {MAIL_HOST}" in zone
        srv = [line for line in zone.splitlines() if " IN SRV " in line]
        assert srv
        assert all(line.endswith(f" {MAIL_HOST}") for line in srv), srv
    assert "globex" not in zones["acme.mail.example.test"]
    assert "acme" not in zones["globex.example.org"]
