"""The portal's sign-in, sessions and safety, in-process against the sandbox issuer (the browser tests show the
pages themselves)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from tenantry.config import Settings
from tenantry.portal.signin import safe_next
from tenantry.sandbox.faults import FaultRule
from tests.support.portal import PORTAL, csrf_of, running_portal


async def test_sign_in_sets_a_new_random_session_id_in_a_cookie_only_the_server_can_read(
    make_settings: Callable[..., Settings],
) -> None:
    async with running_portal(make_settings) as portal, portal.make_browser() as browser:
        to_login = await browser.get("/")
        assert to_login.status_code == 303
        assert to_login.headers["location"] == "/auth/login?next=%2F"
        to_issuer = await browser.get(to_login.headers["location"])
        login_cookie = to_issuer.cookies["tenantry_session"]
        query = to_issuer.headers["location"]
        assert "code_challenge_method=S256" in query
        assert "state=" in query
        assert "nonce=" in query
        back = await portal.at_issuer(browser, query, "bob")
        assert back.status_code == 303
        cookie = back.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie
        assert "Secure" not in cookie  # plain HTTP here; behind HTTPS it is __Host- and Secure
        assert back.cookies["tenantry_session"] != login_cookie
        page = await browser.get("/")
        assert page.status_code == 200
        assert "Bob User" in page.text
        rows = await portal.sessions()
        assert [r.sub for r in rows] == [portal.suite.plain_user.sub]
        assert rows[0].id != back.cookies["tenantry_session"]  # the store keeps only a hash of the cookie
        assert portal.tokens(rows[0]).access_token not in page.text
        assert "eyJ" not in page.text  # no token of any kind reaches the browser


async def test_behind_https_the_cookie_is_secure_and_host_only(make_settings: Callable[..., Settings]) -> None:
    async with running_portal(make_settings, portal_url="https://portal.example.test") as portal:
        async with portal.make_browser() as browser:
            elsewhere = await browser.get("/auth/login?next=/new")
            assert elsewhere.status_code == 303
            assert elsewhere.headers["location"] == "https://portal.example.test/auth/login?next=%2Fnew"
            started = await browser.get("/auth/login", headers={"host": "portal.example.test"})
        assert started.status_code == 303
        assert "redirect_uri=https%3A%2F%2Fportal.example.test%2Fauth%2Fcallback" in started.headers["location"]
        cookie = started.headers["set-cookie"]
        assert cookie.startswith("__Host-tenantry_session=")
        assert "Secure" in cookie
        assert "Path=/" in cookie
        assert "Domain" not in cookie


async def test_a_callback_with_a_state_it_did_not_send_is_refused(make_settings: Callable[..., Settings]) -> None:
    async with running_portal(make_settings) as portal, portal.make_browser() as browser:
        to_login = await browser.get("/auth/login")
        assert to_login.status_code == 303
        forged = await browser.get("/auth/callback?code=abc&state=not-mine")
        assert forged.status_code == 400
        assert "not started here" in forged.text
        assert await browser.get("/") != 200


async def test_next_is_followed_only_to_a_local_path(make_settings: Callable[..., Settings]) -> None:
    async with running_portal(make_settings) as portal, portal.make_browser() as browser:
        back = await portal.sign_in(browser, "bob", start="/operators?status=active")
        assert back.headers["location"] == "/operators?status=active"
    for hostile in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)", "x"):
        assert safe_next(hostile) == "/"


async def test_an_expiring_access_token_is_refreshed_and_a_refused_refresh_leads_back_to_sign_in_and_the_page(
    make_settings: Callable[..., Settings],
) -> None:
    async with running_portal(make_settings) as portal, portal.make_browser() as browser:
        await portal.sign_in(browser, "bob")
        [before] = await portal.sessions()
        await portal.update_sessions(access_expires_at=datetime.now(UTC) - timedelta(minutes=1))
        assert (await browser.get("/")).status_code == 200
        [after] = await portal.sessions()
        assert portal.tokens(after).access_token != portal.tokens(before).access_token
        assert portal.tokens(after).refresh_token != portal.tokens(before).refresh_token  # rotated
        client = portal.suite.issuer.client(portal.suite.credentials.portal_client_id)
        assert client is not None
        portal.suite.issuer.revoke(client, portal.tokens(after).refresh_token or "")
        await portal.update_sessions(access_expires_at=datetime.now(UTC) - timedelta(minutes=1))
        refused = await browser.get("/new?from=here")
        assert refused.status_code == 303
        assert refused.headers["location"] == "/auth/login?next=%2Fnew%3Ffrom%3Dhere"
        assert await portal.sessions() == []
        to_issuer = await browser.get(refused.headers["location"])
        back = await portal.at_issuer(browser, to_issuer.headers["location"], "bob")
        assert back.headers["location"] == "/new?from=here"


async def test_sign_out_ends_the_session_revokes_its_refresh_token_and_uses_the_end_session_endpoint(
    make_settings: Callable[..., Settings],
) -> None:
    async with running_portal(make_settings) as portal, portal.make_browser() as browser:
        await portal.sign_in(browser, "bob")
        [row] = await portal.sessions()
        refresh = portal.tokens(row).refresh_token
        page = await browser.get("/")
        out = await browser.post("/auth/logout", data={"csrf": csrf_of(page.text)})
        assert out.status_code == 303
        target = out.headers["location"]
        assert target.startswith("http://authentik.test/application/o/tenantry/end-session/?")
        assert "id_token_hint=" in target
        assert "post_logout_redirect_uri=" + quote(f"{PORTAL}/auth/signed-out", safe="") in target
        assert await portal.sessions() == []
        client = portal.suite.issuer.client(portal.suite.credentials.portal_client_id)
        assert client is not None
        assert portal.suite.issuer.grants.live_refresh(client, refresh or "") is None
        assert (await browser.get("/")).status_code == 303


async def test_state_changing_forms_need_the_sessions_csrf_token_and_same_origin(
    make_settings: Callable[..., Settings],
) -> None:
    async with running_portal(make_settings) as portal, portal.make_browser() as browser:
        await portal.sign_in(browser, "bob")
        csrf = csrf_of((await browser.get("/new")).text)
        bare = await browser.post("/new", data={"name": "Acme", "slug": "acme"})
        assert bare.status_code == 403
        assert "nothing was changed" in bare.text
        cross = await browser.post(
            "/new", data={"name": "Acme", "slug": "acme", "csrf": csrf}, headers={"origin": "https://evil.example"}
        )
        assert cross.status_code == 403
        assert (await browser.post("/auth/logout", data={})).status_code == 403
        made = await browser.post("/new", data={"name": "Acme", "slug": "acme", "csrf": csrf})
        assert made.status_code == 303
        assert made.headers["location"] == "/workspaces/acme?notice=created"


async def test_pages_refuse_framing_and_inline_script_and_escape_every_name(
    make_settings: Callable[..., Settings],
) -> None:
    async with running_portal(make_settings) as portal, portal.make_browser() as browser:
        await portal.sign_in(browser, "bob")
        csrf = csrf_of((await browser.get("/new")).text)
        await browser.post("/new", data={"name": "<script>alert(1)</script>", "slug": "xss", "csrf": csrf})
        page = await browser.get("/workspaces/xss")
        assert page.status_code == 200
        assert "<script>alert" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy.split("script-src", 1)[1].split(";", 1)[0]
        assert "frame-ancestors 'none'" in policy
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"


async def test_a_workspace_another_person_owns_is_404_as_in_the_api_and_an_admin_sees_it(
    make_settings: Callable[..., Settings],
) -> None:
    async with running_portal(make_settings) as portal:
        async with portal.make_browser() as bob:
            await portal.sign_in(bob, "bob")
            csrf = csrf_of((await bob.get("/new")).text)
            await bob.post("/new", data={"name": "Bob's", "slug": "bobs", "csrf": csrf})
        async with portal.make_browser() as alice:
            await portal.sign_in(alice, "alice")
            assert (await alice.get("/workspaces/bobs")).status_code == 200
            assert "Bob&#39;s" in (await alice.get("/operators?q=bob")).text
        portal.suite.issuer.add_user(
            type(portal.suite.plain_user)(username="carol", password="carol-pw", name="Carol", groups=[])
        )
        async with portal.make_browser() as carol:
            portal.password = lambda _username: "carol-pw"  # type: ignore[method-assign]
            await portal.sign_in(carol, "carol")
            assert (await carol.get("/workspaces/bobs")).status_code == 404
            assert (await carol.get("/workspaces/bobs/live")).status_code == 404
            assert (await carol.get("/workspaces/bobs/zone")).status_code == 404
            assert "bobs" not in (await carol.get("/")).text
            assert (await carol.get("/operators")).status_code == 403


async def test_without_a_portal_client_the_pages_say_what_to_configure(make_settings: Callable[..., Settings]) -> None:
    async with running_portal(make_settings, portal_client_id=None) as portal, portal.make_browser() as browser:
        page = await browser.get("/")
        assert page.status_code == 503
        assert "TENANTRY_PORTAL_CLIENT_ID" in page.text


async def test_an_identity_provider_that_is_down_gets_a_page_that_says_so_and_what_to_do(
    make_settings: Callable[..., Settings],
) -> None:
    async with running_portal(make_settings) as portal, portal.make_browser() as browser:
        portal.suite.authentik.controls.add_fault(FaultRule(kind="status", path="/application/o/", status=503))
        page = await browser.get("/auth/login")
        assert page.status_code == 503
        assert "identity provider" in page.text
        assert "try again" in page.text
        assert page.headers["retry-after"] == "30"
        portal.suite.authentik.controls.clear_faults()
        assert (await browser.get("/auth/login")).status_code == 303
