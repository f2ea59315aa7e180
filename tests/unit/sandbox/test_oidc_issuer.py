"""The sandbox OIDC issuer: providers with their own issuers, keys, the authorization code, refresh,
client_credentials (all three of authentik's ways) and device flows, each as authentik 2025.12 answers them."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette

from tenantry.sandbox.oidc import DemoUser, OidcClient, OidcIssuer
from tests.support.clock import ManualClock

PUBLIC_URL = "https://auth.example.test"
ISSUER = f"{PUBLIC_URL}/application/o/tenantry/"
CLI_ISSUER = f"{PUBLIC_URL}/application/o/tenantry-cli/"
WORKER_ISSUER = f"{PUBLIC_URL}/application/o/tenantry-worker/"
ISSUERS = {"portal": ISSUER, "tenantry-cli": CLI_ISSUER, "worker": WORKER_ISSUER}
HEX64 = r"[0-9a-f]{64}"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
PORTAL_CB = "https://portal.example.test/auth/callback"
CLI_CB = "http://127.0.0.1:8765/callback"

ALICE = DemoUser(
    username="alice",
    password="wonderland",
    name="Alice Liddell",
    email="alice@example.test",
    groups=["acme-owners", "platform-admins"],
    sub="3f1b0c6e2a9d4e8f7c5b1a0d9e8f7c6b5a4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b",
)
SVC = DemoUser(
    username="svc-deploy",
    password="",
    name="Deploy bot",
    groups=["platform-admins"],
    app_passwords=["app-password-of-svc"],
)
PORTAL = OidcClient(
    "portal", "portal-secret", [PORTAL_CB], ["authorization_code", "refresh_token"], "Tenantry portal", slug="tenantry"
)
CLI = OidcClient("tenantry-cli", None, [CLI_CB], ["authorization_code", "refresh_token", DEVICE_GRANT], "Tenantry CLI")
WORKER = OidcClient(
    "worker",
    "worker-secret",
    [],
    ["client_credentials"],
    "tenantry-worker",
    scopes=["openid", "profile", "goauthentik.io/api"],
    slug="tenantry-worker",
)


class FormParser(HTMLParser):
    """Reads a page the way a browser submits it: the form's action and its named inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.labels: set[str] = set()
        self.alerts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag == "form":
            self.action = attr.get("action")
        elif tag == "input" and attr.get("name"):
            self.fields[attr["name"] or ""] = attr.get("value") or ""
        elif tag == "label" and attr.get("for"):
            self.labels.add(attr["for"] or "")
        if attr.get("role") == "alert":
            self.alerts += 1


def parse_form(html: str) -> FormParser:
    parser = FormParser()
    parser.feed(html)
    return parser


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def location_query(response: httpx.Response) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}


def verify_with_jwks(token: str, jwks: dict[str, Any], audience: str) -> dict[str, Any]:
    """The claims of a token signed by a published key, from the issuer of the provider ``audience`` names."""
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWKSet.from_dict(jwks)[kid]
    # Times are the issuer's manual clock's, not the wall clock's: the issuer's own checks cover them.
    options = {"verify_exp": False, "verify_iat": False, "verify_nbf": False}
    return jwt.decode(
        token, key.key, algorithms=["RS256"], audience=audience, issuer=ISSUERS[audience], options=options
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(float(int(time.time())))


@pytest.fixture
def issuer(clock: ManualClock) -> OidcIssuer:
    return OidcIssuer(public_url=PUBLIC_URL + "/", clients=[PORTAL, CLI, WORKER], users=[ALICE, SVC], clock=clock)


@pytest.fixture
async def http(issuer: OidcIssuer) -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=issuer.routes())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL) as client:
        yield client


async def sign_in(
    http: httpx.AsyncClient,
    client: OidcClient,
    *,
    challenge: str | None,
    scope: str = "openid profile email offline_access",
    password: str = "wonderland",
    nonce: str = "n-0S6_WzA2Mj",
) -> httpx.Response:
    """GET the authorize page, then submit its form as a browser would."""
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uris[0],
        "scope": scope,
        "state": "st4te",
        "nonce": nonce,
    }
    if challenge is not None:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    page = await http.get("/application/o/authorize/", params=params)
    assert page.status_code == 200, page.text
    form = parse_form(page.text)
    assert form.action is not None
    return await http.post(
        form.action, data={**form.fields, "username": "alice", "password": password, "action": "login"}
    )


async def code_for(http: httpx.AsyncClient, client: OidcClient, challenge: str | None, **kw: str) -> str:
    response = await sign_in(http, client, challenge=challenge, **kw)
    assert response.status_code == 302, response.text
    query = location_query(response)
    assert query["state"] == "st4te"
    return query["code"]


async def redeem(
    http: httpx.AsyncClient, code: str, verifier: str, *, client: OidcClient = CLI, redirect_uri: str | None = None
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": redirect_uri or client.redirect_uris[0],
        "client_id": client.client_id,
    }
    return await http.post("/application/o/token/", data=data)


# -- providers, discovery and keys ----------------------------------------------------------------------
async def test_discovery_document_points_at_authentik_endpoints_and_allows_only_s256_and_rs256(
    http: httpx.AsyncClient,
) -> None:
    doc = (await http.get("/application/o/tenantry/.well-known/openid-configuration")).json()

    assert doc["issuer"] == ISSUER
    assert doc["authorization_endpoint"] == f"{PUBLIC_URL}/application/o/authorize/"
    assert doc["token_endpoint"] == f"{PUBLIC_URL}/application/o/token/"
    assert doc["userinfo_endpoint"] == f"{PUBLIC_URL}/application/o/userinfo/"
    assert doc["jwks_uri"] == f"{PUBLIC_URL}/application/o/tenantry/jwks/"
    assert doc["device_authorization_endpoint"] == f"{PUBLIC_URL}/application/o/device/"
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert set(doc["token_endpoint_auth_methods_supported"]) == {"client_secret_post", "client_secret_basic"}
    # authentik lists implicit and password too, whatever the provider allows.
    assert {"authorization_code", "refresh_token", "client_credentials", "implicit", "password", DEVICE_GRANT} <= set(
        doc["grant_types_supported"]
    )
    assert doc["response_types_supported"] == ["code"]
    assert set(doc["scopes_supported"]) == {"openid", "profile", "email", "offline_access"}


async def test_every_provider_has_its_own_issuer_discovery_and_jwks_and_they_share_one_key(
    http: httpx.AsyncClient, issuer: OidcIssuer
) -> None:
    docs = {
        slug: (await http.get(f"/application/o/{slug}/.well-known/openid-configuration")).json()
        for slug in ("tenantry", "tenantry-cli", "tenantry-worker")
    }
    jwks = [(await http.get(doc["jwks_uri"].removeprefix(PUBLIC_URL))).json() for doc in docs.values()]

    assert [doc["issuer"] for doc in docs.values()] == [ISSUER, CLI_ISSUER, WORKER_ISSUER]
    assert all(doc["token_endpoint"] == f"{PUBLIC_URL}/application/o/token/" for doc in docs.values())
    assert "goauthentik.io/api" in docs["tenantry-worker"]["scopes_supported"]
    assert jwks[0] == jwks[1] == jwks[2] == issuer.jwks()
    assert [issuer.issuer_for(c) for c in ("portal", "tenantry-cli", "worker")] == [ISSUER, CLI_ISSUER, WORKER_ISSUER]


async def test_discovery_and_jwks_of_another_application_slug_are_not_found(http: httpx.AsyncClient) -> None:
    assert (await http.get("/application/o/other/.well-known/openid-configuration")).status_code == 404
    assert (await http.get("/application/o/other/jwks/")).status_code == 404


async def test_jwks_publishes_the_current_kid_with_its_certificate_and_verifies_a_minted_token(
    http: httpx.AsyncClient, issuer: OidcIssuer
) -> None:
    jwks = (await http.get("/application/o/tenantry/jwks/")).json()
    token = issuer.mint_token(sub=ALICE.sub, groups=["acme-admins"])

    [key] = jwks["keys"]
    assert key["kid"] == issuer.current_kid
    assert re.fullmatch(r"[0-9a-f]{32}", key["kid"])  # authentik: the MD5 hex digest of the key's PEM
    assert (key["kty"], key["alg"], key["use"]) == ("RSA", "RS256", "sig")
    certificate = x509.load_der_x509_certificate(base64.b64decode(key["x5c"][0]))
    public = certificate.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    assert jwt.PyJWK(key).key.public_numbers() == public.public_numbers()
    assert key["x5t"] == b64url(certificate.fingerprint(hashes.SHA1()))
    assert key["x5t#S256"] == b64url(certificate.fingerprint(hashes.SHA256()))
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "typ": "JWT", "kid": issuer.current_kid}
    claims = verify_with_jwks(token, jwks, audience="portal")
    assert claims["groups"] == ["acme-admins"]
    assert claims["preferred_username"] == "alice"


def test_a_minted_token_comes_from_the_provider_of_its_audience_and_has_groups_only_with_profile(
    issuer: OidcIssuer,
) -> None:
    cli_token = jwt.decode(
        issuer.mint_token(sub=ALICE.sub, audience="tenantry-cli"), options={"verify_signature": False}
    )
    no_profile = jwt.decode(
        issuer.mint_token(sub=ALICE.sub, audience="tenantry-cli", scope="openid email"),
        options={"verify_signature": False},
    )

    assert cli_token["iss"] == CLI_ISSUER
    assert cli_token["azp"] == cli_token["aud"] == "tenantry-cli"
    assert cli_token["groups"] == ALICE.groups
    assert "groups" not in no_profile
    assert "preferred_username" not in no_profile


async def test_rotation_keeps_the_old_key_published_until_it_is_retired(
    http: httpx.AsyncClient, issuer: OidcIssuer
) -> None:
    old_kid = issuer.current_kid
    old_token = issuer.mint_token(sub=ALICE.sub)

    new_kid = issuer.rotate_keys()
    new_token = issuer.mint_token(sub=ALICE.sub)
    kids = [key["kid"] for key in (await http.get("/application/o/tenantry/jwks/")).json()["keys"]]

    assert new_kid != old_kid
    assert issuer.current_kid == new_kid
    assert kids == [new_kid, old_kid]
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid
    assert issuer.validate_access_token(old_token) == ALICE

    assert issuer.retire_previous_keys() == [old_kid]
    kids = [key["kid"] for key in (await http.get("/application/o/tenantry/jwks/")).json()["keys"]]
    assert kids == [new_kid]
    assert issuer.validate_access_token(old_token) is None
    assert issuer.validate_access_token(new_token) == ALICE


def test_rotation_without_keeping_unpublishes_the_old_key_at_once(issuer: OidcIssuer) -> None:
    old_token = issuer.mint_token(sub=ALICE.sub)

    new_kid = issuer.rotate_keys(keep_previous=False)

    assert [key["kid"] for key in issuer.jwks()["keys"]] == [new_kid]
    assert issuer.validate_access_token(old_token) is None


# -- authorization code + PKCE ----------------------------------------------------------------------------
async def test_authorize_page_is_a_labelled_login_form_carrying_the_request(http: httpx.AsyncClient) -> None:
    _, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": "tenantry-cli",
        "redirect_uri": CLI_CB,
        "scope": "openid",
        "state": "s",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }

    page = await http.get("/application/o/authorize/", params=params)
    form = parse_form(page.text)

    assert page.headers["content-type"].startswith("text/html")
    assert '<html lang="en">' in page.text
    assert "Tenantry CLI" in page.text
    assert "http://" not in page.text.replace(CLI_CB, "")  # no external assets
    assert form.action == "/application/o/authorize/"
    assert {"username", "password"} <= form.labels
    assert form.fields["code_challenge"] == challenge
    assert form.fields["redirect_uri"] == CLI_CB


async def test_code_flow_with_pkce_issues_tokens_carrying_authentik_claims(
    http: httpx.AsyncClient, issuer: OidcIssuer
) -> None:
    verifier, challenge = pkce_pair()
    code = await code_for(http, CLI, challenge)

    response = await redeem(http, code, verifier)

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "openid profile email offline_access"
    assert body["refresh_token"]
    jwks = issuer.jwks()
    access = verify_with_jwks(body["access_token"], jwks, audience="tenantry-cli")
    assert access["iss"] == CLI_ISSUER
    assert access["iss"].endswith("/")
    assert access["sub"] == ALICE.sub
    assert re.fullmatch(HEX64, access["sub"])
    assert access["azp"] == "tenantry-cli"
    assert access["groups"] == ["acme-owners", "platform-admins"]
    assert access["preferred_username"] == "alice"
    assert access["email"] == "alice@example.test"
    assert access["name"] == "Alice Liddell"
    assert access["email_verified"] is False
    assert access["scope"] == "openid profile email offline_access"
    assert access["exp"] - access["iat"] == 3600
    assert access["auth_time"] == access["iat"]
    assert "jti" not in access  # authentik added jti only in 2026.2 (goauthentik/authentik#20484)
    assert re.fullmatch(HEX64, access["sid"])  # a browser sign-in has a session: sha256 of its key
    assert re.fullmatch(r"[A-Za-z0-9]{40}", access["uid"])
    assert access["nonce"] == "n-0S6_WzA2Mj"
    id_token = verify_with_jwks(body["id_token"], jwks, audience="tenantry-cli")
    assert id_token["sub"] == ALICE.sub
    assert id_token["nonce"] == "n-0S6_WzA2Mj"
    # authentik's token endpoint sends the access token's claims as the ID token, less what only an access
    # token carries, and without at_hash (views/token.py create_code_response, IDToken.to_jwt).
    assert {k: v for k, v in access.items() if k not in ("azp", "uid", "scope")} == id_token
    assert not {"azp", "uid", "scope", "at_hash"} & id_token.keys()


async def test_wrong_password_re_renders_the_form_with_401_and_issues_no_code(http: httpx.AsyncClient) -> None:
    _, challenge = pkce_pair()

    response = await sign_in(http, CLI, challenge=challenge, password="looking-glass")

    assert response.status_code == 401
    assert "location" not in response.headers
    form = parse_form(response.text)
    assert form.alerts == 1
    assert "Invalid username or password." in response.text
    assert form.fields["username"] == "alice"
    assert form.fields["code_challenge"] == challenge
    assert "looking-glass" not in response.text


async def test_code_exchange_with_a_wrong_verifier_is_rejected(http: httpx.AsyncClient) -> None:
    _, challenge = pkce_pair()
    code = await code_for(http, CLI, challenge)

    response = await redeem(http, code, secrets.token_urlsafe(48))

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_a_code_redeems_once_and_a_replay_revokes_the_token_it_produced(
    http: httpx.AsyncClient, issuer: OidcIssuer
) -> None:
    verifier, challenge = pkce_pair()
    code = await code_for(http, CLI, challenge)
    first = await redeem(http, code, verifier)
    assert first.status_code == 200
    access_token = first.json()["access_token"]
    assert issuer.validate_access_token(access_token) == ALICE

    replay = await redeem(http, code, verifier)

    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert issuer.validate_access_token(access_token) is None
    refreshed = await http.post(
        "/application/o/token/",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first.json()["refresh_token"],
            "client_id": "tenantry-cli",
        },
    )
    assert refreshed.json()["error"] == "invalid_grant"


async def test_code_exchange_with_another_redirect_uri_is_rejected(http: httpx.AsyncClient) -> None:
    verifier, challenge = pkce_pair()
    code = await code_for(http, CLI, challenge)

    response = await redeem(http, code, verifier, redirect_uri="http://127.0.0.1:9999/callback")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_an_expired_code_is_rejected(http: httpx.AsyncClient, clock: ManualClock) -> None:
    verifier, challenge = pkce_pair()
    code = await code_for(http, CLI, challenge)
    clock.advance(61)

    response = await redeem(http, code, verifier)

    assert response.json()["error"] == "invalid_grant"


async def test_public_client_without_pkce_is_sent_back_with_invalid_request(http: httpx.AsyncClient) -> None:
    params = {"response_type": "code", "client_id": "tenantry-cli", "redirect_uri": CLI_CB, "state": "s"}

    response = await http.get("/application/o/authorize/", params=params)

    assert response.status_code == 302
    assert response.headers["location"].startswith(CLI_CB + "?")
    assert location_query(response)["error"] == "invalid_request"
    assert location_query(response)["state"] == "s"


async def test_plain_pkce_method_is_refused(http: httpx.AsyncClient) -> None:
    params = {
        "response_type": "code",
        "client_id": "tenantry-cli",
        "redirect_uri": CLI_CB,
        "code_challenge": "x" * 43,
        "code_challenge_method": "plain",
    }

    response = await http.get("/application/o/authorize/", params=params)

    assert location_query(response)["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("client_id", "redirect_uri"),
    [
        ("tenantry-cli", "https://evil.example.test/cb"),
        ("tenantry-cli", CLI_CB + "/"),
        ("nobody", CLI_CB),
    ],
)
async def test_unknown_client_or_unregistered_redirect_uri_gets_an_error_page_not_a_redirect(
    http: httpx.AsyncClient, client_id: str, redirect_uri: str
) -> None:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "code_challenge": "x" * 43,
        "code_challenge_method": "S256",
    }

    response = await http.get("/application/o/authorize/", params=params)

    assert response.status_code == 400
    assert "location" not in response.headers


async def test_cancelling_the_login_redirects_with_access_denied(http: httpx.AsyncClient) -> None:
    _, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": "tenantry-cli",
        "redirect_uri": CLI_CB,
        "state": "s",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    form = parse_form((await http.get("/application/o/authorize/", params=params)).text)

    response = await http.post("/application/o/authorize/", data={**form.fields, "action": "deny"})

    assert response.status_code == 302
    assert location_query(response)["error"] == "access_denied"
    assert "code" not in location_query(response)


async def test_confidential_client_redeems_with_basic_auth_and_is_refused_without_its_secret(
    http: httpx.AsyncClient,
) -> None:
    code = await code_for(http, PORTAL, None, scope="openid profile")
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": PORTAL_CB}

    refused = await http.post("/application/o/token/", data={**data, "client_id": "portal"})
    code = await code_for(http, PORTAL, None, scope="openid profile")
    accepted = await http.post(
        "/application/o/token/", data={**data, "code": code}, headers=basic("portal", "portal-secret")
    )

    assert refused.status_code == 400  # authentik answers every token error 400, invalid_client too
    assert refused.json()["error"] == "invalid_client"
    assert accepted.status_code == 200
    assert accepted.json()["scope"] == "openid profile"
    assert "refresh_token" not in accepted.json()  # no offline_access, no refresh token


# -- refresh tokens -----------------------------------------------------------------------------------------
async def test_refresh_token_rotates_and_the_presented_one_stops_working(
    http: httpx.AsyncClient, issuer: OidcIssuer
) -> None:
    verifier, challenge = pkce_pair()
    first = (await redeem(http, await code_for(http, CLI, challenge), verifier)).json()
    data = {"grant_type": "refresh_token", "client_id": "tenantry-cli", "refresh_token": first["refresh_token"]}

    second = await http.post("/application/o/token/", data=data)
    reused = await http.post("/application/o/token/", data=data)

    assert second.status_code == 200
    body = second.json()
    assert body["refresh_token"] != first["refresh_token"]
    assert body["access_token"] != first["access_token"]
    assert issuer.validate_access_token(body["access_token"]) == ALICE
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    # authentik refreshes only while offline_access is asked for, and keeps the scope first granted.
    without_offline = await http.post(
        "/application/o/token/", data={**data, "refresh_token": body["refresh_token"], "scope": "openid"}
    )
    assert without_offline.json()["error"] == "invalid_scope"
    narrowed = await http.post(
        "/application/o/token/",
        data={**data, "refresh_token": body["refresh_token"], "scope": "openid offline_access"},
    )
    assert narrowed.json()["scope"] == "openid profile email offline_access"
    widened = await http.post(
        "/application/o/token/",
        data={
            **data,
            "refresh_token": narrowed.json()["refresh_token"],
            "scope": "openid offline_access goauthentik.io/api",
        },
    )
    assert widened.json()["error"] == "invalid_scope"


async def test_a_public_client_refreshes_without_a_secret_and_a_confidential_one_needs_its_secret(
    http: httpx.AsyncClient,
) -> None:
    verifier, challenge = pkce_pair()
    cli = (await redeem(http, await code_for(http, CLI, challenge), verifier)).json()
    code = await code_for(http, PORTAL, None)
    portal = (
        await http.post(
            "/application/o/token/",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": PORTAL_CB},
            headers=basic("portal", "portal-secret"),
        )
    ).json()
    refresh = {"grant_type": "refresh_token"}

    public = await http.post(
        "/application/o/token/",
        data={**refresh, "client_id": "tenantry-cli", "refresh_token": cli["refresh_token"]},
    )
    no_secret = await http.post(
        "/application/o/token/", data={**refresh, "client_id": "portal", "refresh_token": portal["refresh_token"]}
    )
    with_secret = await http.post(
        "/application/o/token/",
        data={**refresh, "refresh_token": portal["refresh_token"]},
        headers=basic("portal", "portal-secret"),
    )

    assert public.status_code == 200, public.text
    assert no_secret.status_code == 400
    assert no_secret.json()["error"] == "invalid_client"
    assert with_secret.status_code == 200, with_secret.text


async def test_refresh_token_of_another_client_is_rejected(http: httpx.AsyncClient) -> None:
    verifier, challenge = pkce_pair()
    first = (await redeem(http, await code_for(http, CLI, challenge), verifier)).json()

    response = await http.post(
        "/application/o/token/",
        headers=basic("portal", "portal-secret"),
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
    )

    assert response.json()["error"] == "invalid_grant"


# -- client_credentials ---------------------------------------------------------------------------------------
async def test_the_providers_own_secret_acts_as_its_auto_created_account_in_no_group(
    http: httpx.AsyncClient, issuer: OidcIssuer
) -> None:
    response = await http.post(
        "/application/o/token/",
        data={
            "grant_type": "client_credentials",
            "client_id": "worker",
            "client_secret": "worker-secret",
            "scope": "openid profile goauthentik.io/api email admin:everything",
        },
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert "refresh_token" not in body
    assert body["scope"] == "openid profile goauthentik.io/api"
    claims = verify_with_jwks(body["access_token"], issuer.jwks(), audience="worker")
    assert claims["iss"] == WORKER_ISSUER
    assert claims["preferred_username"] == "ak-tenantry-worker-client_credentials"
    assert claims["groups"] == []
    assert re.fullmatch(HEX64, claims["sub"])
    assert "jti" not in claims
    assert "sid" not in claims  # no browser session behind a machine's token
    principal = issuer.validate_access_token(body["access_token"])
    assert principal is not None
    assert principal.username == "ak-tenantry-worker-client_credentials"
    assert principal.sub == claims["sub"]


@pytest.mark.parametrize("how", ["username_and_password", "base64_secret", "base64_secret_in_basic_auth"])
async def test_a_service_account_with_an_app_password_acts_as_itself_with_its_groups(
    http: httpx.AsyncClient, issuer: OidcIssuer, how: str
) -> None:
    data = {"grant_type": "client_credentials", "scope": "openid profile"}
    encoded = base64.b64encode(b"svc-deploy:app-password-of-svc").decode()
    headers: dict[str, str] = {}
    if how == "username_and_password":
        data |= {"client_id": "worker", "username": "svc-deploy", "password": "app-password-of-svc"}
    elif how == "base64_secret":
        data |= {"client_id": "worker", "client_secret": encoded}
    else:
        headers = basic("worker", encoded)

    response = await http.post("/application/o/token/", data=data, headers=headers)

    assert response.status_code == 200, response.text
    claims = verify_with_jwks(response.json()["access_token"], issuer.jwks(), audience="worker")
    assert claims["preferred_username"] == "svc-deploy"
    assert claims["groups"] == ["platform-admins"]
    assert claims["sub"] == SVC.sub


@pytest.mark.parametrize(
    "credentials",
    [
        {"client_secret": "guess"},
        {"client_secret": base64.b64encode(b"svc-deploy:not-the-app-password").decode()},
        {"client_secret": base64.b64encode(b"nobody:app-password-of-svc").decode()},
        {"username": "svc-deploy", "password": "not-the-app-password"},
        # A user's sign-in password is not an app password.
        {"username": "alice", "password": "wonderland"},
    ],
    ids=["wrong_secret", "wrong_app_password_in_secret", "unknown_user_in_secret", "wrong_app_password", "password"],
)
async def test_wrong_machine_credentials_are_invalid_grant_400(
    http: httpx.AsyncClient, credentials: dict[str, str]
) -> None:
    response = await http.post(
        "/application/o/token/", data={"grant_type": "client_credentials", "client_id": "worker", **credentials}
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert "access_token" not in response.json()
    assert all(value not in response.text for value in credentials.values())


async def test_client_credentials_without_a_scope_grant_none_and_carry_no_groups(
    http: httpx.AsyncClient, issuer: OidcIssuer
) -> None:
    response = await http.post(
        "/application/o/token/",
        data={"grant_type": "client_credentials", "username": "svc-deploy", "password": "app-password-of-svc"},
        headers=basic("worker", "worker-secret"),
    )

    assert response.status_code == 200, response.text
    assert response.json()["scope"] == ""
    claims = verify_with_jwks(response.json()["access_token"], issuer.jwks(), audience="worker")
    assert claims["scope"] == ""
    assert "groups" not in claims


async def test_the_password_grant_is_client_credentials_by_another_name(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/application/o/token/",
        data={
            "grant_type": "password",
            "client_id": "worker",
            "username": "svc-deploy",
            "password": "app-password-of-svc",
            "scope": "openid profile",
        },
    )

    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "openid profile"


async def test_an_unknown_client_is_invalid_client_400(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/application/o/token/", data={"grant_type": "client_credentials", "client_id": "nobody"}
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"


async def test_client_credentials_are_refused_to_a_public_client(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/application/o/token/", data={"grant_type": "client_credentials", "client_id": "tenantry-cli"}
    )

    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"
    assert "access_token" not in response.json()


async def test_a_grant_the_client_is_not_allowed_is_unauthorized_client(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/application/o/token/", headers=basic("portal", "portal-secret"), data={"grant_type": "client_credentials"}
    )

    assert response.json()["error"] == "unauthorized_client"


async def test_an_unknown_grant_type_is_unsupported(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/application/o/token/",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "client_id": "worker",
            "client_secret": "worker-secret",
        },
    )

    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


# -- device flow --------------------------------------------------------------------------------------------
async def start_device(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.post("/application/o/device/", data={"client_id": "tenantry-cli", "scope": "openid profile"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def poll(http: httpx.AsyncClient, device_code: object) -> httpx.Response:
    return await http.post(
        "/application/o/token/",
        data={"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": "tenantry-cli"},
    )


async def test_device_flow_is_pending_then_slowed_down_then_approved_on_the_verify_page(
    http: httpx.AsyncClient, issuer: OidcIssuer, clock: ManualClock
) -> None:
    device = await start_device(http)
    assert device["expires_in"] == 60  # authentik: the provider's access_code_validity, minutes=1
    assert device["interval"] == 5
    assert device["verification_uri"] == f"{PUBLIC_URL}/device"
    assert device["verification_uri_complete"] == f"{PUBLIC_URL}/device?code={device['user_code']}"
    assert re.fullmatch(r"[0-9]{9}", device["user_code"])
    assert len(device["device_code"]) == 128

    assert (await poll(http, device["device_code"])).json()["error"] == "authorization_pending"
    too_fast = await poll(http, device["device_code"])
    assert too_fast.status_code == 400
    assert too_fast.json()["error"] == "slow_down"
    clock.advance(10)
    assert (await poll(http, device["device_code"])).json()["error"] == "authorization_pending"

    page = await http.get(str(device["verification_uri_complete"]).removeprefix(PUBLIC_URL))
    form = parse_form(page.text)
    assert form.fields["user_code"] == device["user_code"]
    assert {"user_code", "username", "password"} <= form.labels
    assert form.action is not None
    wrong = await http.post(
        form.action, data={**form.fields, "username": "alice", "password": "nope", "action": "approve"}
    )
    assert wrong.status_code == 401
    code = str(device["user_code"])
    typed = f"{code[:3]} {code[3:6]}-{code[6:]}"  # users type codes sloppily
    approved = await http.post(
        form.action, data={"user_code": typed, "username": "alice", "password": "wonderland", "action": "approve"}
    )
    assert approved.status_code == 200
    assert "Tenantry CLI" in approved.text

    clock.advance(10)
    tokens = await poll(http, device["device_code"])
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["scope"] == "openid profile"
    assert "refresh_token" not in tokens.json()  # no offline_access
    claims = verify_with_jwks(tokens.json()["access_token"], issuer.jwks(), audience="tenantry-cli")
    assert "sid" not in claims
    assert issuer.validate_access_token(tokens.json()["access_token"]) == ALICE
    assert (await poll(http, device["device_code"])).json()["error"] == "invalid_grant"


async def test_device_flow_denied_by_the_user_answers_access_denied(
    http: httpx.AsyncClient, clock: ManualClock
) -> None:
    device = await start_device(http)

    denied = await http.post(
        "/device",
        data={"user_code": device["user_code"], "username": "alice", "password": "wonderland", "action": "deny"},
    )

    assert denied.status_code == 200
    assert (await poll(http, device["device_code"])).json()["error"] == "access_denied"


async def test_device_flow_past_its_lifetime_answers_expired_token(http: httpx.AsyncClient, clock: ManualClock) -> None:
    device = await start_device(http)
    clock.advance(61)

    late_approval = await http.post(
        "/device",
        data={"user_code": device["user_code"], "username": "alice", "password": "wonderland", "action": "approve"},
    )

    assert late_approval.status_code == 400
    assert (await poll(http, device["device_code"])).json()["error"] == "expired_token"


async def test_device_authorization_is_refused_to_a_client_without_the_device_grant(http: httpx.AsyncClient) -> None:
    response = await http.post("/application/o/device/", headers=basic("portal", "portal-secret"))

    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


# -- userinfo, revocation, introspection, validation ----------------------------------------------------------
async def test_userinfo_answers_profile_claims_for_a_valid_token(http: httpx.AsyncClient) -> None:
    verifier, challenge = pkce_pair()
    body = (await redeem(http, await code_for(http, CLI, challenge), verifier)).json()

    response = await http.get("/application/o/userinfo/", headers={"Authorization": f"Bearer {body['access_token']}"})
    posted = await http.post("/application/o/userinfo/", headers={"Authorization": f"Bearer {body['access_token']}"})

    assert response.status_code == 200
    assert response.json() == {
        "sub": ALICE.sub,
        "name": "Alice Liddell",
        "given_name": "Alice Liddell",
        "preferred_username": "alice",
        "nickname": "alice",
        "groups": ["acme-owners", "platform-admins"],
        "email": "alice@example.test",
        "email_verified": False,
    }
    assert posted.json() == response.json()


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer not-a-jwt", "Basic YTpi"])
async def test_userinfo_without_a_valid_bearer_token_is_401(http: httpx.AsyncClient, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}

    response = await http.get("/application/o/userinfo/", headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_userinfo_refuses_an_expired_token(
    http: httpx.AsyncClient, issuer: OidcIssuer, clock: ManualClock
) -> None:
    token = issuer.mint_token(sub=ALICE.sub)
    clock.advance(3601)

    response = await http.get("/application/o/userinfo/", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


async def test_revoked_access_token_stops_validating_and_introspects_inactive(
    http: httpx.AsyncClient, issuer: OidcIssuer
) -> None:
    token = (
        await http.post(
            "/application/o/token/", headers=basic("worker", "worker-secret"), data={"grant_type": "client_credentials"}
        )
    ).json()["access_token"]
    auth = basic("worker", "worker-secret")
    before = (await http.post("/application/o/introspect/", headers=auth, data={"token": token})).json()

    revoked = await http.post("/application/o/revoke/", headers=auth, data={"token": token})

    assert before["active"] is True
    assert before["client_id"] == "worker"
    assert revoked.status_code == 200
    assert issuer.validate_access_token(token) is None
    after = (await http.post("/application/o/introspect/", headers=auth, data={"token": token})).json()
    assert after == {"active": False}


async def test_introspection_hides_tokens_of_other_clients(http: httpx.AsyncClient, issuer: OidcIssuer) -> None:
    token = issuer.mint_token(sub=ALICE.sub, audience="portal")

    response = await http.post(
        "/application/o/introspect/", headers=basic("worker", "worker-secret"), data={"token": token}
    )

    assert response.json() == {"active": False}


async def test_introspection_with_wrong_credentials_answers_inactive_like_authentik(
    http: httpx.AsyncClient, issuer: OidcIssuer
) -> None:
    token = issuer.mint_token(sub=ALICE.sub, audience="worker")
    right = await http.post(
        "/application/o/introspect/", headers=basic("worker", "worker-secret"), data={"token": token}
    )

    wrong = await http.post("/application/o/introspect/", headers=basic("worker", "guess"), data={"token": token})
    anonymous = await http.post("/application/o/introspect/", data={"token": token})

    assert right.json()["active"] is True
    assert right.json()["scope"] == "openid profile email"
    assert not {"azp", "uid"} & right.json().keys()  # the ID-token claims, as authentik's view answers them
    assert (wrong.status_code, wrong.json()) == (200, {"active": False})
    assert (anonymous.status_code, anonymous.json()) == (200, {"active": False})


def test_an_id_token_minted_beside_an_access_token_lacks_what_only_access_tokens_carry(issuer: OidcIssuer) -> None:
    id_token = issuer.mint_token(sub=ALICE.sub, audience="portal", kind="id")

    claims = jwt.decode(id_token, options={"verify_signature": False})

    assert claims["aud"] == "portal"
    assert not {"azp", "uid", "scope", "at_hash"} & claims.keys()
    assert issuer.validate_access_token(id_token) is None  # not an access token to the issuer either


def test_validate_access_token_gives_the_token_groups_for_an_unregistered_subject(issuer: OidcIssuer) -> None:
    token = issuer.mint_token(
        sub="0b8e6a4e-3c1f-4a57-9d7e-1f0f7f5a2c33",
        groups=["globex-admins"],
        extra_claims={"preferred_username": "bob", "email": "bob@example.test"},
    )

    principal = issuer.validate_access_token(token, audience="portal")

    assert principal is not None
    assert principal.username == "bob"
    assert principal.groups == ["globex-admins"]
    assert principal.email == "bob@example.test"
    assert principal.password == ""


def test_validate_access_token_rejects_expired_early_foreign_and_misaddressed_tokens(
    issuer: OidcIssuer, clock: ManualClock
) -> None:
    other = OidcIssuer(public_url=PUBLIC_URL, clients=[PORTAL], users=[ALICE])
    now = clock()

    assert issuer.validate_access_token(issuer.mint_token(sub=ALICE.sub, expires_in=-1)) is None
    assert issuer.validate_access_token(issuer.mint_token(sub=ALICE.sub, not_before=now + 60)) is None
    assert (
        issuer.validate_access_token(
            issuer.mint_token(sub=ALICE.sub, extra_claims={"iss": f"{PUBLIC_URL}/application/o/tenantry"})
        )
        is None
    )
    assert issuer.validate_access_token(other.mint_token(sub=ALICE.sub)) is None
    assert issuer.validate_access_token(issuer.mint_token(sub=ALICE.sub), audience="worker") is None
    assert issuer.validate_access_token("not.a.jwt") is None
    forged = jwt.encode(
        {"iss": ISSUER, "sub": ALICE.sub, "exp": now + 60, "jti": "x"},
        "k" * 32,
        algorithm="HS256",
        headers={"kid": issuer.current_kid},
    )
    assert issuer.validate_access_token(forged) is None
    valid = issuer.mint_token(sub=ALICE.sub, expires_in=60)
    assert issuer.validate_access_token(valid, audience="portal") == ALICE
    clock.advance(60)
    assert issuer.validate_access_token(valid) is None


def test_mint_token_with_an_unpublished_kid_is_refused(issuer: OidcIssuer) -> None:
    with pytest.raises(ValueError, match="no published signing key"):
        issuer.mint_token(sub=ALICE.sub, kid="unknown")
