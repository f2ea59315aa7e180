"""Browser tests: the whole product served on loopback (API + portal and the three sandboxes) and Chromium.

Chromium is Debian's package, driven by Playwright through its executable path (Playwright's own browser
download is never used). Without it the browser tests are skipped with the reason, except under CI
(``CI=true``), where a missing browser is a failure: CI always runs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tenantry.app import create_app
from tenantry.config import Settings
from tenantry.container import build_container
from tenantry.db.engine import create_engine
from tenantry.db.migrate import upgrade
from tenantry.sandbox.faults import FaultRule
from tenantry.sandbox.server import serve_in_thread
from tenantry.sandbox.suite import SandboxSuite

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("TENANTRY_SCREENSHOTS", ROOT / ".tenantry" / "screenshots"))
DESKTOP = {"width": 1100, "height": 800}
PHONE = {"width": 390, "height": 844}


def chromium_path() -> str:
    """Debian's chromium (or ``TENANTRY_CHROMIUM``); skips the test without it, fails under CI."""
    found = os.environ.get("TENANTRY_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        found = None
    if found is None:
        reason = "browser tests need Debian's chromium (apt-get install chromium) and the playwright package"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + ": CI must run them")
        pytest.skip(reason)
    return found


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveStack:
    """The product as a person meets it: ``url`` is the portal (and API) on loopback."""

    url: str
    suite: SandboxSuite
    settings: Settings
    db_path: Path

    def password(self, username: str) -> str:
        c = self.suite.credentials
        return {"alice": c.admin_password, "bob": c.user_password}[username]

    def fail_mail(self) -> None:
        """Every Stalwart JMAP call answers 503 until :meth:`heal_mail`."""
        self.suite.stalwart.controls.add_fault(FaultRule(kind="status", path="^/jmap", status=503))

    def heal_mail(self) -> None:
        self.suite.stalwart.controls.clear_faults()

    def slow_files(self, ms: float) -> None:
        """oCIS answers every request ``ms`` later (so a step is seen still in progress)."""
        self.suite.ocis.controls.add_fault(FaultRule(kind="latency", latency_ms=ms))

    def expire_sessions(self) -> None:
        """Every portal session ends now, as if the person had been away longer than the idle timeout."""
        past = (datetime.now(UTC) - timedelta(hours=1)).replace(tzinfo=None).isoformat(sep=" ")
        with contextlib.closing(sqlite3.connect(self.db_path)) as conn:
            conn.execute("UPDATE portal_sessions SET expires_at = ?", (past,))
            conn.commit()


@contextlib.contextmanager
def live_stack(tmp_path: Path, **overrides: Any) -> Iterator[LiveStack]:
    portal_port, first = _free_port(), _free_port()
    ports = [first, _free_port(), _free_port()]
    portal_url = f"http://127.0.0.1:{portal_port}"
    suite = SandboxSuite(
        authentik_url=f"http://127.0.0.1:{ports[0]}",
        stalwart_url=f"http://127.0.0.1:{ports[1]}",
        ocis_url=f"http://127.0.0.1:{ports[2]}",
        portal_url=portal_url,
        dkim_delay=0.2,
    )
    db_path = tmp_path / "portal.db"
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{db_path}",
        "mail_domain_base": "demo.example.test",
        "retry_base_seconds": 30,  # a failing step waits long enough to be seen, until Reconcile
        "retry_cap_seconds": 60,
        "pending_poll_seconds": 0.5,
        "worker_poll_seconds": 0.2,
        "create_wait_seconds": 1,
        "resync_interval_seconds": 3600,
        "dns_resolvers": "127.0.0.1:9",
        "dns_timeout_seconds": 1,
        "portal_url": portal_url,
        "log_level": "WARNING",
        "self_service_max_tenants": 100,  # the tests create more than a person may by default
        "self_service_creations": 100,
        **suite.settings(),
        **overrides,
    }
    settings = Settings(**values)

    async def migrate() -> None:
        engine = create_engine(settings)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(migrate())
    app = create_app(settings, container_factory=lambda: build_container(settings))
    with contextlib.ExitStack() as stack:
        for port, sandbox in zip(ports, suite.apps().values(), strict=True):
            stack.enter_context(serve_in_thread(sandbox, port=port))
        stack.enter_context(serve_in_thread(app, port=portal_port))
        yield LiveStack(portal_url, suite, settings, db_path)


def shot(page: Any, name: str, *, full_page: bool = True) -> Path:
    """Save a screenshot of what the page shows now as ``<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^a-z0-9-]', '-', name.lower())}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def sign_in(page: Any, stack: LiveStack, username: str, *, start: str = "/", screenshot: str | None = None) -> None:
    """Open ``start``, sign in at the sandbox issuer's page, and wait to be back on the portal."""
    page.goto(stack.url + start)
    page.wait_for_url(re.compile(r".*/application/o/authorize/.*"))
    if screenshot:
        shot(page, screenshot)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(stack.password(username))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(re.escape(stack.url) + r"/.*"))
