"""``tenantry demo`` and ``tenantry sandbox``: the whole product on SQLite against the sandbox upstreams."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Any

import httpx

from tenantry.auth.login import MACHINE_SCOPE
from tenantry.config import Settings
from tenantry.sandbox.server import RunningServer, start_in_loop
from tenantry.sandbox.suite import SandboxSuite

DEMO_DIR = Path(".tenantry")
# Picks the access token out of the token endpoint's JSON with sed, so the lines need nothing beyond curl.
PICK_ACCESS = """ | sed -E 's/.*"access_token": ?"([^"]+)".*/\\1/'"""


def _say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


async def _start_sandboxes(suite: SandboxSuite, host: str, first_port: int) -> list[tuple[RunningServer, Any]]:
    servers = []
    for offset, (_name, app) in enumerate(suite.apps().items()):
        servers.append(await start_in_loop(app, host, first_port + offset))
    return servers


async def _stop(servers: list[tuple[RunningServer, Any]]) -> None:
    for server, _task in servers:
        server.server.should_exit = True
    await asyncio.gather(*(task for _, task in servers), return_exceptions=True)


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def _suite_for(host: str, first_port: int, *, portal_url: str = "") -> SandboxSuite:
    base = f"http://{host}"
    return SandboxSuite(
        authentik_url=f"{base}:{first_port}",
        stalwart_url=f"{base}:{first_port + 1}",
        ocis_url=f"{base}:{first_port + 2}",
        portal_url=portal_url,
    )


async def run_sandbox_forever(host: str, first_port: int) -> None:
    suite = _suite_for(host, first_port)
    servers = await _start_sandboxes(suite, host, first_port)
    c = suite.credentials
    _say("Sandbox upstreams are running (Ctrl-C stops them):")
    _say(f"  authentik  {suite.urls['authentik']}   API token: {c.authentik_token}")
    for issuer, client_ids in suite.trusted_providers.items():
        _say(f"             OIDC provider {issuer}  client id {', '.join(client_ids)}")
    _say(f"  Stalwart   {suite.urls['stalwart']}   API key: {c.stalwart_api_key}")
    _say(f"  oCIS       {suite.urls['ocis']}   app token: {c.ocis_username}:{c.ocis_app_token}")
    _say("  Each has /_sandbox/requests (request log) and /_sandbox/faults (inject latency and errors).")
    try:
        await _wait_for_signal()
    finally:
        await _stop(servers)


async def _machine_token(token_url: str, client_id: str, **credentials: str) -> str:
    """A client_credentials token: ``client_secret=…``, or ``username=…, password=<app password>``."""
    form = {"grant_type": "client_credentials", "client_id": client_id, "scope": MACHINE_SCOPE, **credentials}
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(token_url, data=form)
        response.raise_for_status()
        return str(response.json()["access_token"])


def _banner(api_url: str, suite: SandboxSuite, db_path: Path) -> None:
    c = suite.credentials
    token_url = f"{suite.urls['authentik']}/application/o/token/"
    _say("")
    _say("Tenantry demo is running (Ctrl-C stops everything)")
    _say(f"  API          {api_url}   (OpenAPI: {api_url}/docs, health: {api_url}/readyz)")
    _say(f"  Portal       {api_url}/   (open it in a browser and sign in as alice or bob, below)")
    _say(f"  store        SQLite at {db_path}")
    _say(f"  authentik    {suite.urls['authentik']}   OIDC providers the API trusts (issuer, client id):")
    for issuer, client_ids in suite.trusted_providers.items():
        _say(f"                 {issuer}  {', '.join(client_ids)}")
    _say(f"  Stalwart     {suite.urls['stalwart']}")
    _say(f"  oCIS         {suite.urls['ocis']}")
    _say("")
    _say(f"Get an access token for a demo platform admin, the service account {c.service_account} (member of")
    _say("tenantry-admins), with its app password (scope profile carries the groups claim):")
    _say(
        f"  ADMIN_TOKEN=$(curl -s -d grant_type=client_credentials -d client_id={c.admin_client_id}"
        f" -d username={c.service_account} \\"
    )
    _say(f"      -d password={c.service_account_app_password} -d scope='{MACHINE_SCOPE}' {token_url} {PICK_ACCESS})")
    _say("and for a demo ordinary user, a provider's own secret (it acts as the provider's")
    _say(f"ak-{c.user_client_id}-client_credentials account, in no group; may create workspaces, sees only its own):")
    _say(f"  USER_TOKEN=$(curl -s -d grant_type=client_credentials -d client_id={c.user_client_id} \\")
    _say(f"      -d client_secret={c.user_client_secret} -d scope='{MACHINE_SCOPE}' {token_url} {PICK_ACCESS})")
    _say("Then create a workspace and watch it:")
    _say("  curl -s -H \"Authorization: Bearer $USER_TOKEN\" -H 'Content-Type: application/json' \\")
    _say(f'      -d \'{{"slug":"acme","name":"Acme Corp"}}\' {api_url}/tenants')
    _say(f'  .venv/bin/tenantry tenants show acme --url {api_url} --token "$USER_TOKEN"')
    _say(f"People sign in at the portal, {api_url}/, or with `.venv/bin/tenantry login --url {api_url}`:")
    _say(f"  alice / {c.admin_password}   (platform admin)      bob / {c.user_password}   (ordinary user)")
    _say("")


def _fresh_demo_database() -> Path:
    """Each demo starts from an empty store in .tenantry/ (ignored by git)."""
    DEMO_DIR.mkdir(exist_ok=True)
    for leftover in DEMO_DIR.glob("demo.db*"):
        leftover.unlink()
    return (DEMO_DIR / "demo.db").resolve()


async def run_demo(*, host: str, port: int, smoke: bool) -> int:
    from tenantry.app import create_app
    from tenantry.container import build_container
    from tenantry.db.engine import create_engine
    from tenantry.db.migrate import upgrade
    from tenantry.logging import configure_logging

    db_path = _fresh_demo_database()
    api_url = f"http://{host}:{port}"
    suite = _suite_for(host, port + 1, portal_url=api_url)
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{db_path}",
        resync_interval_seconds=30,
        retry_base_seconds=1,
        retry_cap_seconds=30,
        pending_poll_seconds=2,
        mail_domain_base="demo.example.test",
        portal_url=api_url,
        log_level="WARNING" if smoke else "INFO",
        **suite.settings(),
    )
    configure_logging(settings.log_level, json=settings.log_json)
    engine = create_engine(settings)
    await upgrade(engine)
    await engine.dispose()

    sandboxes = await _start_sandboxes(suite, host, port + 1)
    api = await start_in_loop(create_app(settings, container_factory=lambda: build_container(settings)), host, port)
    servers = [*sandboxes, api]
    try:
        _banner(api_url, suite, db_path)
        if smoke:
            return await _smoke(api_url, suite)
        await _wait_for_signal()
        return 0
    finally:
        await _stop(servers)


async def _smoke(api_url: str, suite: SandboxSuite) -> int:
    """Create a workspace as the ordinary demo user and wait until it is active."""
    c = suite.credentials
    token_url = f"{suite.urls['authentik']}/application/o/token/"
    token = await _machine_token(token_url, c.user_client_id, client_secret=c.user_client_secret)
    admin_token = await _machine_token(
        token_url, c.admin_client_id, username=c.service_account, password=c.service_account_app_password
    )
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=60) as client:
        response = await client.post("/tenants", json={"slug": "acme", "name": "Acme Corp"})
        if response.status_code != 201:
            _say(f"create failed: {response.status_code} {response.text}")
            return 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        body = response.json()
        while body["status"] != "active" and loop.time() < deadline:
            await asyncio.sleep(0.5)
            body = (await client.get("/tenants/acme")).json()
        _say(f"tenant acme: status {body['status']}")
        for step, condition in body["conditions"].items():
            _say(f"  {step:<10} {condition['status']:<8} {condition['reason']}: {condition['message']}")
        dns = (await client.get("/tenants/acme/dns")).json()
        _say(f"  {len(dns['records'])} DNS records to publish for {dns['domain']}")
        as_admin = await client.get("/tenants/acme", headers={"Authorization": f"Bearer {admin_token}"})
        _say(f"  the demo platform admin sees it too: HTTP {as_admin.status_code}")
        return 0 if body["status"] == "active" and as_admin.status_code == 200 else 1
