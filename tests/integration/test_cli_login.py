"""The CLI gets and caches tokens: client credentials for machines, device login for people."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tenantry.app import create_app
from tenantry.cli import app as cli
from tenantry.cli_auth import cache_path, login_device
from tenantry.config import Settings
from tenantry.container import build_container
from tenantry.sandbox.server import serve_in_thread
from tenantry.sandbox.suite import SandboxSuite


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
                creds.admin_client_id,
                "--client-secret",
                creds.admin_client_secret,
            ],
        )
        assert login.exit_code == 0, login.output
        created = runner.invoke(cli, ["tenants", "create", "acme", "Acme Corp", "--url", api_url, "--json"])
        assert created.exit_code == 0, created.output
        listed = runner.invoke(cli, ["tenants", "list", "--url", api_url])
    assert listed.exit_code == 0, listed.output
    assert "acme" in listed.output
    assert stat.S_IMODE(cache_path().stat().st_mode) == 0o600
    assert creds.admin_client_secret not in cache_path().read_text()


def test_a_wrong_client_secret_fails_the_login_with_a_message(
    make_settings: Callable[..., Settings], config_dir: Path
) -> None:
    with running_stack(make_settings) as (api_url, suite):
        result = CliRunner().invoke(
            cli,
            ["login", "--url", api_url, "--client-id", suite.credentials.admin_client_id, "--client-secret", "wrong"],
        )
    assert result.exit_code == 1
    assert "login failed" in result.output
    assert not cache_path().exists()


def test_device_login_of_a_person_is_approved_in_the_browser_and_then_used(
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

        suite.issuer.device_poll_interval = 0
        asyncio.run(login_device(api_url, announce=lambda d: threading.Thread(target=approve, args=(d,)).start()))
        assert approved.is_set()
        runner = CliRunner()
        created = runner.invoke(cli, ["tenants", "create", "bobco", "Bob Co", "--url", api_url, "--json"])
        assert created.exit_code == 0, created.output
        shown = runner.invoke(cli, ["tenants", "show", "bobco", "--url", api_url, "--json"])
    assert '"owner"' in shown.output
    assert suite.plain_user.sub in shown.output
