"""`tenantry serve` as a real process on SQLite: a clean exit 0 on SIGTERM, also with event streams open and
with several API processes."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.serve_process import TENANTRY, Served, prepare_store, serve_env, start_serve, wait_exit, wait_ready

pytestmark = pytest.mark.slow


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'tenantry.db'}"


@pytest.fixture
async def cookie(database_url: str) -> str:
    return await prepare_store(database_url)


@pytest.fixture
def served() -> Iterator[list[Served]]:
    """Every process a test starts, killed at the end if it is still running."""
    started: list[Served] = []
    yield started
    for process in started:
        process.stop()


async def read_stream(client: httpx.AsyncClient, url: str, cookie: str, opened: asyncio.Event) -> str:
    """Read an event stream to its end; ``opened`` is set once its first event has arrived."""
    received = ""
    async with client.stream("GET", url, cookies={"tenantry_session": cookie}) as answer:
        assert answer.status_code == 200, await answer.aread()
        assert answer.headers["content-type"].startswith("text/event-stream")
        async for chunk in answer.aiter_text():
            received += chunk
            if "update" in received:
                opened.set()
    return received


async def test_sigterm_ends_open_event_streams_and_serve_exits_0_within_seconds(
    tmp_path: Path, database_url: str, cookie: str, served: list[Served]
) -> None:
    api = start_serve(tmp_path, database_url)
    served.append(api)
    await wait_ready(api)
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
        created = await client.post("/tenants", json={"slug": "acme", "name": "Acme"})
        assert created.status_code == 201, created.text
        opened = [asyncio.Event() for _ in range(3)]
        streams = [asyncio.create_task(read_stream(client, "/workspaces/acme/live", cookie, event)) for event in opened]
        async with asyncio.timeout(10):
            await asyncio.gather(*(event.wait() for event in opened))
        api.process.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        assert await wait_exit(api, timeout=8) == 0, api.log()
        took = time.monotonic() - stopped_at
        # Each stream ended by itself (a whole answer, no error) instead of being cut off at the deadline.
        received = await asyncio.gather(*streams)
    assert all("event: update" in text for text in received)
    assert took < 3, f"took {took:.1f}s to stop:\n{api.log()}"
    assert "timeout graceful shutdown exceeded" not in api.log()


async def test_sigint_and_sigterm_without_open_requests_exit_0(
    tmp_path: Path, database_url: str, cookie: str, served: list[Served]
) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        api = start_serve(tmp_path, database_url)
        served.append(api)
        await wait_ready(api)
        api.process.send_signal(sig)
        assert await wait_exit(api, timeout=5) == 0, api.log()


def children(pid: int) -> list[int]:
    """The API processes a supervisor started (not the helpers multiprocessing may add)."""
    found = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        with open(f"/proc/{child}/cmdline", "rb") as cmdline:
            if b"spawn_main" in cmdline.read():
                found.append(int(child))
    return found


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def established(port: int) -> set[str]:
    """The socket inodes of the established TCP connections whose local end is ``port`` (the server's side)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01":  # 01: ESTABLISHED
                inodes.add(fields[9])
    return inodes


def connections_held(pid: int, port: int) -> int:
    """How many of the server's established connections on ``port`` the process ``pid`` holds."""
    held = {f"socket:[{inode}]" for inode in established(port)}
    return sum(1 for fd in Path(f"/proc/{pid}/fd").iterdir() if fd.readlink().name in held)


@pytest.fixture
async def connections() -> AsyncIterator[list[httpx.AsyncClient]]:
    held: list[httpx.AsyncClient] = []
    yield held
    for client in held:
        await client.aclose()


async def test_two_processes_both_serve_requests_and_the_supervisor_exits_0(
    tmp_path: Path,
    database_url: str,
    cookie: str,
    served: list[Served],
    connections: list[httpx.AsyncClient],
) -> None:
    api = start_serve(tmp_path, database_url, "--processes", "2", "--no-worker")
    served.append(api)
    await wait_ready(api)
    for _ in range(200):
        if len(workers := children(api.process.pid)) >= 2:
            break
        await asyncio.sleep(0.1)
    assert len(workers) == 2, api.log()
    port = httpx.URL(api.url).port
    assert port is not None
    # Connections kept open, one after another: each is accepted by whichever process is quicker.
    for _ in range(24):
        client = httpx.AsyncClient(base_url=api.url, timeout=10)
        connections.append(client)
        assert (await client.get("/tenants")).status_code == 200
        await asyncio.sleep(0.01)
    # Which process holds the server's end of each connection (counted from the kernel's tables, so that no
    # other socket a process opens or closes meanwhile counts).
    held = {pid: connections_held(pid, port) for pid in workers}
    assert all(count >= 1 for count in held.values()), held
    assert sum(held.values()) >= 24, held

    api.process.send_signal(signal.SIGTERM)
    assert await wait_exit(api, timeout=10) == 0, api.log()
    assert not any(alive(pid) for pid in workers)


def test_several_processes_each_running_a_worker_on_sqlite_are_refused(tmp_path: Path, database_url: str) -> None:
    result = subprocess.run(
        [str(TENANTRY), "serve", "--processes", "2"],
        env=serve_env(database_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "--no-worker" in result.stderr
