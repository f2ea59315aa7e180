"""The CLI gets and caches tokens: machine logins (a provider's secret, or a service account's app password),
and device login for people with the CLI's own public client, refreshed without a secret."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from typer.testing import CliRunner

from tenantry.app import create_app
from tenantry.auth.login import app_password_secret
from tenantry.auth.token_cache import TokenCache
from tenantry.cli import app as cli
from tenantry.cli_auth import cache_path, login_device
from tenantry.config import Settings
from tenantry.container import build_container
from tenantry.sandbox.server import serve_in_thread
from tenantry.sandbox.suite import SandboxSuite

pytestmark = pytest.mark.slow  # each test runs the sandbox authentik and the API on loopback ports


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_stack(make_settings: Callable[..., Settings]) -> Iterator[tuple[str, SandboxSuite]]:
    """The sandbox authentik (with its issuer) and the API, auth on, on loopback ports."""
    port = free_port()
    suite = SandboxSuite(
        authentik_url=f"http://127.0.0.1:{port}", stalwart_url="http://127.0.0.1:9", ocis_url="http://127.0.0.1:9"
    )
    values = suite.settings()
    for key in ("stalwart_url", "ocis_url"):
        values[key] = None
    settings = make_settings(auth_enabled=True, **values)
    api = create_app(settings, container_factory=lambda: build_container(settings))
    with serve_in_thread(suite.authentik.app, port=port), serve_in_thread(api) as api_url:
        yield api_url, suite


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TENANTRY_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.delenv("TENANTRY_TOKEN", raising=False)
    return tmp_path / "cfg"


def test_machine_login_caches_a_token_the_tenants_commands_then_use(
    make_settings: Callable[..., Settings], config_dir: Path
) -> None:
    runner = CliRunner()
    with running_stack(make_settings) as (api_url, suite):
        before = runner.invoke(cli, ["tenants", "list", "--url", api_url])
        assert before.exit_code == 1
        assert "401" in before.output
        creds = suite.credentials
        login = runner.invoke(
            cli,
            [
                "login",
                "--url",
                api_url,
                "--client-id",
                creds.user_client_id,
                "--client-secret",
                creds.user_client_secret,
            ],
        )
        assert login.exit_code == 0, login.output
        created = runner.invoke(cli, ["tenants", "create", "acme", "Acme Corp", "--url", api_url, "--json"])
        assert created.exit_code == 0, created.output
        listed = runner.invoke(cli, ["tenants", "list", "--url", api_url])
    assert listed.exit_code == 0, listed.output
    assert "acme" in listed.output
    assert stat.S_IMODE(cache_path().stat().st_mode) == 0o600
    assert creds.user_client_secret not in cache_path().read_text()
    # The token was issued by the user machine's own provider, and the API trusted that issuer.
    logins = json.loads(cache_path().with_name("logins.json").read_text())
    assert logins[api_url]["issuer"] == suite.issuer.issuer_for(creds.user_client_id)


@pytest.mark.parametrize("how", ["app_password", "base64_secret"])
def test_a_service_account_logs_in_with_its_app_password_and_acts_with_its_groups(
    make_settings: Callable[..., Settings], config_dir: Path, how: str
) -> None:
    runner = CliRunner()
    with running_stack(make_settings) as (api_url, suite):
        c = suite.credentials
        assert (
            runner.invoke(
                cli,
                ["login", "--url", api_url, "--client-id", c.user_client_id, "--client-secret", c.user_client_secret],
            ).exit_code
            == 0
        )
        assert runner.invoke(cli, ["tenants", "create", "ants", "Ants", "--url", api_url]).exit_code == 0
        if how == "app_password":
            credentials = ["--username", c.service_account, "--app-password", c.service_account_app_password]
        else:
            credentials = ["--client-secret", app_password_secret(c.service_account, c.service_account_app_password)]
        login = runner.invoke(cli, ["login", "--url", api_url, "--client-id", c.admin_client_id, *credentials])
        assert login.exit_code == 0, login.output
        # A platform admin (tenantry-admins, carried by the profile scope the CLI asks for) sees the workspace.
        shown = runner.invoke(cli, ["tenants", "show", "ants", "--url", api_url])
    assert shown.exit_code == 0, shown.output
    assert c.service_account_app_password not in cache_path().read_text()


@pytest.mark.parametrize(
    "credentials",
    [["--client-secret", "wrong"], ["--username", "svc-tenantry-admin", "--app-password", "wrong"]],
    ids=["client_secret", "app_password"],
)
def test_wrong_machine_credentials_fail_the_login_with_a_message(
    make_settings: Callable[..., Settings], config_dir: Path, credentials: list[str]
) -> None:
    with running_stack(make_settings) as (api_url, suite):
        result = CliRunner().invoke(
            cli, ["login", "--url", api_url, "--client-id", suite.credentials.admin_client_id, *credentials]
        )
    assert result.exit_code == 1
    assert "login failed" in result.output
    assert "invalid_grant" in result.output
    assert "wrong" not in result.output
    assert not cache_path().exists()


def test_device_login_of_a_person_uses_the_clis_own_client_and_refreshes_without_a_secret_after_expiry(
    make_settings: Callable[..., Settings], config_dir: Path
) -> None:
    with running_stack(make_settings) as (api_url, suite):
        approved = threading.Event()

        def approve(device: Any) -> None:
            # What the person does in the browser: open the page, sign in as bob, approve the code.
            form = {
                "user_code": device.user_code,
                "username": "bob",
                "password": suite.credentials.user_password,
                "action": "approve",
            }
            response = httpx.post(device.verification_uri, data=form)
            assert response.status_code == 200, response.text
            approved.set()

        suite.issuer.device_poll_interval = 1  # 0 would mean RFC 8628's default of 5 s to the CLI
        asyncio.run(login_device(api_url, announce=lambda d: threading.Thread(target=approve, args=(d,)).start()))
        assert approved.is_set()
        runner = CliRunner()
        created = runner.invoke(cli, ["tenants", "create", "bobco", "Bob Co", "--url", api_url, "--json"])
        assert created.exit_code == 0, created.output
        cli_issuer = suite.issuer.issuer_for(suite.credentials.cli_client_id)
        first = TokenCache(cache_path()).get(cli_issuer, suite.credentials.cli_client_id)
        assert first is not None
        assert first.refresh_token is not None  # offline_access was asked for
        # An hour later the access token has run out: the next command refreshes it, with no secret.
        expire_cached_tokens()
        shown = runner.invoke(cli, ["tenants", "show", "bobco", "--url", api_url, "--json"])
        refreshed = TokenCache(cache_path()).get(cli_issuer, suite.credentials.cli_client_id)
    assert shown.exit_code == 0, shown.output
    assert suite.plain_user.sub in shown.output
    assert refreshed is not None
    assert refreshed.access_token != first.access_token
    assert refreshed.refresh_token not in (None, first.refresh_token)  # rotated
    assert claims_of(refreshed.access_token)["iss"] == cli_issuer
    assert claims_of(refreshed.access_token)["groups"] == ["staff"]


def expire_cached_tokens() -> None:
    path = cache_path()
    document = json.loads(path.read_text())
    for entry in document["entries"]:
        entry["expires_at"] = time.time() - 1
    path.write_text(json.dumps(document))


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims
