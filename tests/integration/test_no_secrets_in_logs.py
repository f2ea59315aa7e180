"""No credential and no bearer token reaches the service log, over a whole create → reconcile → get run.

The run goes through every path that handles a secret: callers' access tokens from the client-credentials
grant (and one refused), each upstream's credential (authentik API token, Stalwart API key, the oCIS app token
or client secret and the access tokens Tenantry fetches with it), and upstream failures whose messages are
logged. Logging is configured as ``tenantry serve`` does it (console and JSON renderers), and everything
written to stdout and stderr is searched for each secret, its Basic-auth encoding and the parts of each token.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import structlog

from tenantry.config import Settings
from tenantry.logging import configure_logging
from tenantry.sandbox.suite import SandboxSuite
from tests.support.api import api_client

pytestmark = pytest.mark.slow  # the whole product in-process with every credential kind, twice per test

TOKEN_PATH = "/application/o/token/"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging replaces the root handlers and structlog's config; put both back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    saved = structlog.get_config()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.configure(**saved)


class TokenRecorder(httpx.AsyncBaseTransport):
    """Passes requests through and keeps every access token the token endpoint hands out to Tenantry."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.tokens: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path != TOKEN_PATH:
            return response
        content = await response.aread()
        token = json.loads(content).get("access_token") if response.status_code == 200 else None
        if isinstance(token, str):
            self.tokens.append(token)
        return httpx.Response(response.status_code, headers=response.headers, content=content)


async def client_credentials_token(suite: SandboxSuite, client_id: str, client_secret: str) -> str:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=suite.authentik.app), base_url=suite.urls["authentik"]
    ) as http:
        response = await http.post(
            TOKEN_PATH,
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": client_secret,
                "scope": "openid profile",  # profile carries the groups claim
            },
        )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def forbidden_strings(secrets: list[str]) -> set[str]:
    """Each secret, and for tokens each of their parts, so a partly logged token is caught too."""
    found: set[str] = set()
    for secret in secrets:
        found.add(secret)
        if secret.count(".") == 2:
            found.update(part for part in secret.split(".") if len(part) >= 16)
    return found


@pytest.mark.parametrize(("ocis_auth", "log_json"), [("app-token", False), ("client-credentials", True)])
async def test_a_create_reconcile_get_run_logs_no_credential_and_no_token(
    make_settings: Callable[..., Settings],
    capsys: pytest.CaptureFixture[str],
    restore_logging: None,
    ocis_auth: str,
    log_json: bool,
) -> None:
    suite = SandboxSuite(
        authentik_url="http://authentik.test",
        stalwart_url="http://stalwart.test",
        ocis_url="http://ocis.test",
        dkim_delay=0.0,
    )
    creds = suite.credentials
    settings = make_settings(**suite.settings(ocis_auth=ocis_auth), auth_enabled=True, log_json=log_json)
    configure_logging(settings.log_level, json=settings.log_json)
    recorder = TokenRecorder(suite.transports()["ocis-token"])
    transports = {**suite.transports(), "ocis-token": recorder}

    # An admin machine: the service account's base64(username:app-password) as the client secret.
    service_account = base64.b64encode(f"{creds.service_account}:{creds.service_account_app_password}".encode())
    admin_token = await client_credentials_token(suite, creds.admin_client_id, service_account.decode())
    user_token = await client_credentials_token(suite, creds.user_client_id, creds.user_client_secret)
    # A genuine token for an application this API does not serve: refused, and the refusal is logged.
    foreign = suite.issuer.mint_token(sub=suite.plain_user.sub, audience="some-other-application")
    # Each upstream fails the first time, so errors (and the oCIS token refresh after a 401) are logged too.
    suite.authentik.controls.fail(r"^/api/v3/core/groups/", 503, times=1)
    suite.stalwart.controls.fail(r"^/jmap", 500, method="POST", times=1)
    suite.ocis.controls.fail(r"^/graph/", 401, times=1)

    async with api_client(settings, transports=transports) as (client, _):
        refused = await client.get("/tenants", headers={"Authorization": f"Bearer {foreign}"})
        created = await client.post(
            "/tenants", json={"slug": "acme", "name": "Acme Corp"}, headers={"Authorization": f"Bearer {user_token}"}
        )
        reconciled = await client.post("/tenants/acme/reconcile", headers={"Authorization": f"Bearer {admin_token}"})
        shown = await client.get("/tenants/acme", headers={"Authorization": f"Bearer {user_token}"})
    captured = capsys.readouterr()
    output = captured.out + captured.err

    assert refused.status_code == 401
    assert created.status_code == 201, created.text
    assert "error" in created.json()["provisioningStatus"].values(), "the injected faults were not hit"
    assert reconciled.status_code == 200, reconciled.text
    assert shown.json()["status"] == "active", shown.json()
    if ocis_auth == "client-credentials":
        assert recorder.tokens, "Tenantry never fetched an oCIS access token"

    # The capture holds the run's log, so the search below could find a leak.
    for event in ("api.start", "auth.jwks.refreshed", "auth.rejected", "step.failed", "reconcile.done"):
        assert event in captured.err, f"{event} missing from the captured log"

    secrets = [
        value
        for value in dataclasses.asdict(creds).values()
        if isinstance(value, str)
        and value
        not in (
            creds.ocis_username,
            creds.admin_client_id,
            creds.user_client_id,
            creds.ocis_client_id,
            creds.portal_client_id,
            creds.cli_client_id,
            creds.service_account,
        )
    ]
    secrets.append(base64.b64encode(f"{creds.ocis_username}:{creds.ocis_app_token}".encode()).decode())
    secrets += [admin_token, user_token, foreign, *recorder.tokens]
    leaked = sorted(s for s in forbidden_strings(secrets) if s in output)
    assert not leaked, f"{len(leaked)} secret value(s) appear in the log"


def _secret_values(settings: Settings) -> list[Any]:
    return [value for value in settings.model_dump().values() if value is not None]


def test_settings_printed_or_logged_show_no_credential(
    make_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    suite = SandboxSuite(
        authentik_url="http://authentik.test", stalwart_url="http://stalwart.test", ocis_url="http://ocis.test"
    )
    settings = make_settings(**suite.settings(ocis_auth="client-credentials"), auth_enabled=True)
    configure_logging("INFO")
    structlog.get_logger("tests").info("settings.loaded", settings=settings, values=_secret_values(settings))
    output = capsys.readouterr().err
    assert "settings.loaded" in output
    for secret in (
        suite.credentials.authentik_token,
        suite.credentials.stalwart_api_key,
        suite.credentials.ocis_client_secret,
    ):
        assert secret not in output


@pytest.mark.parametrize("log_json", [False, True])
def test_a_logged_exception_carrying_a_credential_is_redacted(
    capsys: pytest.CaptureFixture[str], restore_logging: None, log_json: bool
) -> None:
    token = SandboxSuite(
        authentik_url="http://authentik.test", stalwart_url="http://stalwart.test", ocis_url="http://ocis.test"
    ).issuer.mint_token(sub="someone")
    configure_logging("INFO", json=log_json)
    try:
        raise RuntimeError(f"upstream refused the request with Authorization: Bearer {token}")
    except RuntimeError:
        structlog.get_logger("tests").exception("worker.reconcile_failed", tenant_id="t-1")
    output = capsys.readouterr().err
    assert "worker.reconcile_failed" in output
    assert "upstream refused the request" in output
    assert "Traceback" in output
    leaked = [part for part in forbidden_strings([token]) if part in output]
    assert not leaked, f"{len(leaked)} part(s) of the token appear in the log"


def test_credentials_nested_inside_logged_values_are_redacted(
    capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    api_key = "API_" + "k" * 32
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzb21lb25lIn0.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
    configure_logging("INFO", json=True)
    structlog.get_logger("tests").info(
        "upstream.call",
        request={"url": "http://stalwart.test/jmap/", "headers": {"X-Api-Key": api_key}},
        attempts=[{"authorization": f"Bearer {token}"}, f"retried with Bearer {token}"],
        steps={"ocis": "ok"},
    )
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["event"] == "upstream.call"
    assert line["steps"] == {"ocis": "ok"}  # ordinary values are left alone
    assert line["request"]["url"] == "http://stalwart.test/jmap/"
    rendered = json.dumps(line)
    assert api_key not in rendered
    assert token not in rendered


def test_standard_library_records_are_rendered_as_json_and_redacted_too(capsys: pytest.CaptureFixture[str]) -> None:
    import json as jsonlib
    import logging

    configure_logging("INFO", json=True)
    logging.getLogger("uvicorn.error").info("peer sent Authorization: Bearer abcdefghijklmnop")
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines, "nothing was logged"
    record = jsonlib.loads(lines[-1])
    assert record["logger"] == "uvicorn.error"
    assert "abcdefghijklmnop" not in lines[-1]
