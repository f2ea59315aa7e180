"""The sandbox issuer's end-session endpoint: back to a return address the provider allows, else a page."""

from __future__ import annotations

import httpx

from tenantry.sandbox.suite import SandboxSuite


def suite() -> SandboxSuite:
    return SandboxSuite(
        authentik_url="http://authentik.test",
        stalwart_url="http://stalwart.test",
        ocis_url="http://ocis.test",
        portal_url="http://portal.test",
    )


async def test_end_session_sends_the_person_back_only_to_the_providers_own_origin() -> None:
    sandbox = suite()
    transport = httpx.ASGITransport(app=sandbox.authentik.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://authentik.test") as client:
        discovery = (await client.get("/application/o/tenantry/.well-known/openid-configuration")).json()
        end_session = discovery["end_session_endpoint"].removeprefix("http://authentik.test")
        back = await client.get(
            end_session, params={"post_logout_redirect_uri": "http://portal.test/auth/signed-out", "state": "s1"}
        )
        assert back.status_code == 302
        assert back.headers["location"] == "http://portal.test/auth/signed-out?state=s1"
        elsewhere = await client.get(end_session, params={"post_logout_redirect_uri": "https://evil.example/"})
        assert elsewhere.status_code == 200
        assert "signed out" in elsewhere.text
        assert (await client.get("/application/o/nope/end-session/")).status_code == 404
