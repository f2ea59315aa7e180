"""What every benchmark shares: the sandbox and product processes, a fresh store, request logs, the report.

Each benchmark runs three kinds of process: the sandbox upstreams (bench/sandbox_proc.py), the product
(``tenantry serve`` and/or ``tenantry worker``, or bench/worker_proc.py, configured through ``TENANTRY_*``
variables exactly as an operator would), and the load generator (the benchmark itself, or bench/loadgen.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from bench import procstat
from bench.seeding import MAIL_DOMAIN_BASE, SeededIds, read_ids, seed_store
from sqlalchemy.engine import make_url

from tenantry.config import Settings
from tenantry.db.engine import create_engine
from tenantry.db.migrate import upgrade

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
TENANTRY = Path(sys.executable).with_name("tenantry")
UPSTREAMS = ("authentik", "stalwart", "ocis")
START_SECONDS = 600.0  # seeding 100,000 tenants' objects takes about a minute; a slow machine more


def run_id() -> str:
    return uuid.uuid4().hex[:6]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile: a value some sample really took."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


# -- the sandbox process ------------------------------------------------------------------------------------


@dataclass
class Sandbox:
    pid: int
    urls: dict[str, str]
    settings: dict[str, Any] = field(repr=False)  # the sandbox credentials: never printed
    tokens: list[str] = field(repr=False)
    seeded: int
    seed_seconds: float
    ids: SeededIds | None = None

    def peak_rss_mib(self) -> float:
        return procstat.peak_rss_mib(self.pid)


@contextlib.contextmanager
def sandbox(
    workdir: Path,
    *,
    seed: int = 0,
    prefix: str = "seed-",
    latency_ms: float = 0.0,
    dkim_delay_ms: float = 0.0,
    tokens: int = 1,
) -> Iterator[Sandbox]:
    """bench/sandbox_proc.py in a process of its own for the duration of the block."""
    ids_file = workdir / f"ids-{prefix}json"
    command = [
        sys.executable,
        str(BENCH / "sandbox_proc.py"),
        f"--seed={seed}",
        f"--prefix={prefix}",
        f"--ids-file={ids_file}",
        f"--latency-ms={latency_ms}",
        f"--dkim-delay-ms={dkim_delay_ms}",
        f"--tokens={tokens}",
    ]
    log = workdir / "sandbox.log"
    with log.open("wb") as err:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, cwd=ROOT)
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], START_SECONDS)
        line = process.stdout.readline() if ready else b""
        if not line:
            raise RuntimeError(f"the sandbox process did not start:\n{_tail(log)}")
        info = json.loads(line)
        yield Sandbox(
            pid=process.pid,
            urls=info["urls"],
            settings=info["settings"],
            tokens=info["tokens"],
            seeded=info["seeded"],
            seed_seconds=info["seed_seconds"],
            ids=read_ids(ids_file) if seed else None,
        )
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


async def clear_request_logs(urls: Mapping[str, str]) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        for url in urls.values():
            (await client.delete(f"{url}/_sandbox/requests")).raise_for_status()


async def request_logs(urls: Mapping[str, str]) -> dict[str, list[dict[str, Any]]]:
    async with httpx.AsyncClient(timeout=120) as client:
        logs = {}
        for name, url in urls.items():
            response = await client.get(f"{url}/_sandbox/requests")
            response.raise_for_status()
            logs[name] = response.json()
        return logs


def injected_latency(logs: Mapping[str, list[dict[str, Any]]]) -> float | None:
    """The mean latency the sandboxes measured adding to the requests (see tenantry.sandbox.latency), in ms."""
    delays = [e["delayed_ms"] for entries in logs.values() for e in entries if e.get("delayed_ms")]
    return round(sum(delays) / len(delays), 3) if delays else None


def count_requests(logs: Mapping[str, list[dict[str, Any]]]) -> dict[str, dict[str, int]]:
    """Per upstream: requests logged, and of those answered with an error status (or not answered)."""
    return {
        name: {
            "requests": len(entries),
            "errors": sum(1 for e in entries if e.get("status") is None or e["status"] >= 400),
        }
        for name, entries in logs.items()
    }


# -- the store ------------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def fresh_store(database: str | None, workdir: Path) -> AsyncIterator[str]:
    """A migrated, empty store for one run: a SQLite file in ``workdir``, or (``database`` a PostgreSQL URL)
    a database of its own created beside the one named and dropped afterwards."""
    if database is None or not database.startswith("postgresql"):
        url = database or f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
        await _migrate(url)
        yield url
        return
    import asyncpg

    server = make_url(database)
    name = f"{server.database or 'bench'}_{run_id()}"
    dsn = server.set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        await _migrate(url)
        yield url
    finally:
        admin = await asyncpg.connect(dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def _migrate(url: str) -> None:
    engine = create_engine(Settings(database_url=url, auth_enabled=False))
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


async def seed(url: str, prefix: str, ids: SeededIds, *, pending: int = 0, fresh: int = 0) -> float:
    """Write the seeded tenants' rows into the store (see :func:`bench.seeding.seed_store`); returns the seconds
    it took."""
    began = time.perf_counter()
    engine = create_engine(Settings(database_url=url, auth_enabled=False))
    try:
        await seed_store(engine, prefix, ids, pending=pending, fresh=fresh)
        if url.startswith("postgresql"):
            async with engine.begin() as conn:
                await conn.execute(sa.text("ANALYZE"))
    finally:
        await engine.dispose()
    return time.perf_counter() - began


async def store_scalar(url: str, query: sa.Executable) -> Any:
    engine = create_engine(Settings(database_url=url, auth_enabled=False))
    try:
        async with engine.connect() as conn:
            return (await conn.execute(query)).scalar()
    finally:
        await engine.dispose()


async def store_rows(url: str, query: sa.Executable) -> list[Any]:
    engine = create_engine(Settings(database_url=url, auth_enabled=False))
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(query)).all())
    finally:
        await engine.dispose()


# -- the product's processes ---------------------------------------------------------------------------------


def product_env(upstream: Sandbox, database_url: str, **overrides: Any) -> dict[str, str]:
    """The environment of a product process: pointed at the sandbox and the store, JSON logs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")}
    values: dict[str, Any] = {
        **upstream.settings,
        "database_url": database_url,
        "mail_domain_base": MAIL_DOMAIN_BASE,
        "log_json": True,
        "log_level": "WARNING",
        "dns_resolvers": "127.0.0.1:9",  # nothing here asks DNS; a resolver that is not there says so at once
        **overrides,
    }
    for key, value in values.items():
        if value is None:
            continue
        text = str(value).lower() if isinstance(value, bool) else str(value)
        env[f"TENANTRY_{key.upper()}"] = text
    return env


@dataclass
class Process:
    """A product process: its pid, its log, and the log lines read so far."""

    popen: subprocess.Popen[bytes]
    log: Path
    url: str | None = None
    _offset: int = 0

    @property
    def pid(self) -> int:
        return self.popen.pid

    def events(self) -> list[dict[str, Any]]:
        """JSON log lines written since the previous call."""
        with self.log.open("rb") as handle:
            handle.seek(self._offset)
            data = handle.read()
        end = data.rfind(b"\n") + 1
        self._offset += end
        found = []
        for line in data[:end].splitlines():
            with contextlib.suppress(ValueError):
                item = json.loads(line)
                if isinstance(item, dict):
                    found.append(item)
        return found

    async def wait_event(self, event: str, within: float) -> dict[str, Any]:
        """The next log line whose ``event`` is ``event``."""
        deadline = time.monotonic() + within
        while True:
            for item in self.events():
                if item.get("event") == event:
                    return item
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.log.stem} exited ({self.popen.returncode}):\n{_tail(self.log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"no {event} from {self.log.stem} within {within:g} s:\n{_tail(self.log)}")
            await asyncio.sleep(0.05)


def _spawn(command: Sequence[str], env: Mapping[str, str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(list(command), env=dict(env), stdout=out, stderr=subprocess.STDOUT, cwd=cwd)


@contextlib.asynccontextmanager
async def product(name: str, command: Sequence[str], env: Mapping[str, str], workdir: Path) -> AsyncIterator[Process]:
    """A product process for the duration of the block, stopped with SIGTERM (as a deploy would) at its end."""
    log = workdir / f"{name}.log"
    popen = _spawn(command, env, log, workdir)
    process = Process(popen, log)
    try:
        yield process
    finally:
        _stop(popen, timeout=30)


@contextlib.asynccontextmanager
async def serve(env: Mapping[str, str], workdir: Path, *args: str, name: str = "serve") -> AsyncIterator[Process]:
    """``tenantry serve`` on a free port; yields once ``/healthz`` answers."""
    port = free_port()
    command = [str(TENANTRY), "serve", "--host", "127.0.0.1", "--port", str(port), *args]
    async with product(name, command, env, workdir) as process:
        process.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(timeout=5) as client:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{process.url}/healthz")).status_code == 200:
                        break
                if popen_done(process) or time.monotonic() > deadline:
                    raise RuntimeError(f"tenantry serve did not start:\n{_tail(process.log)}")
                await asyncio.sleep(0.1)
        yield process


def popen_done(process: Process) -> bool:
    return process.popen.poll() is not None


@contextlib.contextmanager
def workdir(keep: bool = False) -> Iterator[Path]:
    if keep:
        yield Path(tempfile.mkdtemp(prefix="tenantry-bench-"))
        return
    with tempfile.TemporaryDirectory(prefix="tenantry-bench-") as tmp:
        yield Path(tmp)


# -- the report -----------------------------------------------------------------------------------------------


REFERENCE_ADDITIONS = 3_000_000


def reference_seconds() -> float:
    """How fast one core of this machine runs this interpreter: a fixed loop of additions, best of three, in
    seconds per 10^7 additions. Figures from machines whose reference differs are not comparable as they are."""
    best = math.inf
    for _ in range(3):
        began, total = time.perf_counter(), 0
        for i in range(REFERENCE_ADDITIONS):
            total += i
        best = min(best, time.perf_counter() - began)
    return round(best * 10_000_000 / REFERENCE_ADDITIONS, 3)


def run_measured(run: Callable[[], Coroutine[Any, Any, dict[str, Any]]]) -> dict[str, Any]:
    """``asyncio.run(run())``, whose report's ``machine`` (taken after the run) gains the reference measured
    before it (see :func:`machine_text`)."""
    before = reference_seconds()
    report = asyncio.run(run())
    report["machine"]["reference_seconds_before"] = before
    return report


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return None


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": sys.version.split()[0],
        "platform": sys.platform,
        "reference_seconds": reference_seconds(),
    }


def machine_text(facts: Mapping[str, Any]) -> str:
    """One line on the machine a report was made on (see :func:`reference_seconds`): measured before and after
    the run, so that a machine whose speed changed under the run can be seen."""
    before = facts.get("reference_seconds_before")
    after = f"{facts['reference_seconds']:.2f}"
    measured = after if before is None else f"{before:.2f} before the run, {after} after"
    return (
        f"  machine: {facts.get('cpu_model') or 'unknown CPU'}, {facts['cpus']} CPUs, Python {facts['python']}; "
        f"reference (seconds per 10^7 additions, lower is faster): {measured}"
    )


def print_table(title: str, columns: Sequence[str], rows: Sequence[tuple[str, Sequence[str]]]) -> None:
    """A table: one column per run, one row per figure."""
    label_width = max([len(label) for label, _ in rows] + [6])
    widths = [max([len(c)] + [len(values[i]) for _, values in rows]) for i, c in enumerate(columns)]
    print(title)
    print()
    print("  " + " " * label_width + "".join(f"  {c:>{w}}" for c, w in zip(columns, widths, strict=True)))
    for label, values in rows:
        print(f"  {label:<{label_width}}" + "".join(f"  {v:>{w}}" for v, w in zip(values, widths, strict=True)))
    print()


def write_json(path: Path | None, report: Mapping[str, Any]) -> None:
    if path is not None:
        path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")


def fmt(value: float | None, spec: str = ".1f", unit: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{unit}"


def load_text(start: Sequence[float] | None, end: Sequence[float] | None) -> str:
    """The 1-minute load average at start → end."""
    if not start or not end:
        return "n/a"
    return f"{start[0]:.2f}→{end[0]:.2f}"
