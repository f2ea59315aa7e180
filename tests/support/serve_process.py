"""`tenantry serve` as a child process on SQLite, and a portal session planted in its store for event streams."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from tenantry.config import Settings
from tenantry.db.base import utcnow
from tenantry.db.engine import create_engine, create_sessionmaker
from tenantry.db.migrate import upgrade
from tenantry.portal.models import PortalSession
from tenantry.portal.oidc import Tokens
from tenantry.portal.sessions import COOKIE, TokenBox, session_key

TENANTRY = Path(sys.executable).with_name("tenantry")
PORTAL_SECRET = "portal-secret-for-tests"
ISSUER = "http://127.0.0.1:9/application/o/tenantry/"  # trusted, never asked: authentication is off


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_env(database_url: str, **overrides: Any) -> dict[str, str]:
    """The environment of a `tenantry serve` with authentication off and a portal whose sessions can be planted."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")}
    values: dict[str, Any] = {
        "database_url": database_url,
        "auth_enabled": "false",
        "oidc_providers": f'{{"{ISSUER}": ["tenantry-portal"]}}',
        "portal_client_id": "tenantry-portal",
        "portal_client_secret": PORTAL_SECRET,
        "log_json": "true",
        "log_level": "INFO",
        "create_wait_seconds": 1,
        "dns_resolvers": "127.0.0.1:9",
        **overrides,
    }
    env.update({f"TENANTRY_{key.upper()}": str(value) for key, value in values.items()})
    return env


async def prepare_store(database_url: str) -> str:
    """Migrate the store and plant a signed-in portal session; returns its cookie."""
    engine = create_engine(Settings(database_url=database_url, auth_enabled=False))
    try:
        await upgrade(engine)
        cookie, now = secrets.token_urlsafe(32), utcnow()
        tokens = Tokens("access-token", time.time() + 3600)
        async with create_sessionmaker(engine)() as session:
            session.add(
                PortalSession(
                    id=session_key(cookie),
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + timedelta(hours=1),
                    sub="someone",
                    display_name="Someone",
                    csrf_token=secrets.token_urlsafe(32),
                    tokens=TokenBox(PORTAL_SECRET).seal(tokens),
                    access_expires_at=now + timedelta(hours=1),
                )
            )
            await session.commit()
        return cookie
    finally:
        await engine.dispose()


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def cookies(self, cookie: str) -> dict[str, str]:
        return {COOKIE: cookie}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


def start_serve(tmp_path: Path, database_url: str, *args: str, **overrides: Any) -> Served:
    port = free_port()
    log_path = tmp_path / f"serve-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(TENANTRY), "serve", "--port", str(port), *args],
            env=serve_env(database_url, **overrides),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return Served(process, f"http://127.0.0.1:{port}", log_path)


async def wait_ready(served: Served, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            assert served.process.poll() is None, served.log()
            try:
                if (await client.get(f"{served.url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"tenantry serve did not answer within {timeout}s:\n{served.log()}")


async def wait_exit(served: Served, timeout: float) -> int:
    """The exit code of the served process, which must end within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while served.process.poll() is None:
        assert time.monotonic() < deadline, f"still running {timeout}s after SIGTERM:\n{served.log()}"
        await asyncio.sleep(0.05)
    return served.process.returncode
