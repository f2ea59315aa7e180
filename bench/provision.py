"""Provisioning benchmark: N workspaces created through the HTTP API against the sandbox upstreams.

The product (API, reconciler, worker loop, store) runs in this process, served on loopback and driven over
HTTP by ``--concurrency`` clients, each creating a workspace and waiting until it is active before it
creates the next. The three sandbox upstreams run in a child process of their own, also on loopback, so
their CPU is not charged to the product; each adds ``--latency-ms`` to every request it answers. The
figures come from the store (each tenant's ``created_at`` and ``activated_at``, both stamped by the
product) and from the sandboxes' request logs. See bench/README.md.

    .venv/bin/python bench/provision.py [--tenants N] [--latency-ms L] [--workers W] [--concurrency C]
                                        [--database URL] [--dkim-delay-ms D] [--log-level LEVEL]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import multiprocessing
import resource
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from tenantry.config import Settings
from tenantry.container import Container, build_container
from tenantry.db.engine import create_engine
from tenantry.db.migrate import upgrade
from tenantry.provisioning.worker import Worker
from tenantry.sandbox.server import start_in_loop
from tenantry.tenants.models import Tenant

UPSTREAMS = ("authentik", "stalwart", "ocis")
POLL_SECONDS = 0.25  # how often a client looks again at a tenant not yet active (timing comes from the store)
TENANT_DEADLINE_SECONDS = 300.0


# -- the sandbox upstreams, in a child process -------------------------------------------------------------


def _listening_socket() -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose proto says TCP, and
    # with Nagle on, every response written in two parts stalls on the peer's delayed ACK (~40 ms).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    return sock


def _sandbox_main(conn: Connection, stop: Event, latency_ms: float, dkim_delay: float) -> None:
    """Child process: serve the three sandboxes on loopback until ``stop`` is set.

    The sockets are bound before the suite is built because the sandboxes answer with their public URLs.
    The ``Settings`` values pointing at them (fresh demo credentials) go back through ``conn``.
    """
    import uvicorn

    from tenantry.sandbox.suite import SandboxSuite

    sockets = [_listening_socket() for _ in UPSTREAMS]
    urls = [f"http://127.0.0.1:{sock.getsockname()[1]}" for sock in sockets]
    suite = SandboxSuite(authentik_url=urls[0], stalwart_url=urls[1], ocis_url=urls[2], dkim_delay=dkim_delay)
    for sandbox in (suite.authentik, suite.stalwart, suite.ocis):
        sandbox.controls.latency_ms = latency_ms

    async def serve() -> None:
        servers = [
            uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", backlog=1024))
            for app in suite.apps().values()
        ]
        tasks = [
            asyncio.create_task(server.serve(sockets=[sock])) for server, sock in zip(servers, sockets, strict=True)
        ]
        while not all(server.started for server in servers):
            if any(task.done() for task in tasks):
                await asyncio.gather(*tasks)
            await asyncio.sleep(0.01)
        conn.send({"urls": dict(zip(UPSTREAMS, urls, strict=True)), "settings": suite.settings()})
        await asyncio.get_running_loop().run_in_executor(None, stop.wait)
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*tasks)

    asyncio.run(serve())


@dataclass
class Sandboxes:
    urls: dict[str, str]
    settings: dict[str, Any] = field(repr=False)  # holds the sandbox credentials: never printed


@contextlib.contextmanager
def sandboxes(latency_ms: float, dkim_delay: float) -> Iterator[Sandboxes]:
    """The sandbox upstreams in a child process for the duration of the block."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    stop = ctx.Event()
    process: BaseProcess = ctx.Process(
        target=_sandbox_main, args=(child, stop, latency_ms, dkim_delay), name="tenantry-bench-sandboxes", daemon=True
    )
    process.start()
    try:
        if not parent.poll(60):
            raise RuntimeError("the sandbox process did not start within 60 s")
        ready = parent.recv()
        yield Sandboxes(ready["urls"], ready["settings"])
    finally:
        stop.set()
        process.join(timeout=10)
        if process.is_alive():
            process.terminate()
            process.join(timeout=5)


async def clear_request_logs(urls: dict[str, str]) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for url in urls.values():
            (await client.delete(f"{url}/_sandbox/requests")).raise_for_status()


async def logged_requests(urls: dict[str, str]) -> dict[str, tuple[int, int]]:
    """Per upstream, from its request log: (requests, of which answered with an error status)."""
    counts: dict[str, tuple[int, int]] = {}
    async with httpx.AsyncClient(timeout=60) as client:
        for name, url in urls.items():
            response = await client.get(f"{url}/_sandbox/requests")
            response.raise_for_status()
            entries = response.json()
            errors = sum(1 for entry in entries if entry.get("status") is None or entry["status"] >= 400)
            counts[name] = (len(entries), errors)
    return counts


# -- the product, in this process -------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def product(settings: Settings, workers: int) -> AsyncIterator[str]:
    """The API served on loopback with ``workers`` worker loops beside it; yields the API's base URL."""
    from tenantry.app import create_app

    extra: list[tuple[Worker, asyncio.Task[None]]] = []

    def container() -> Container:
        built = build_container(settings)
        for _ in range(workers - 1):  # the API runs the first worker loop itself
            worker = built.worker()
            extra.append((worker, asyncio.create_task(worker.run())))
        return built

    api, task = await start_in_loop(create_app(settings, container_factory=container))
    try:
        yield api.url
    finally:
        for worker, worker_task in extra:
            worker.stop()
            await worker_task
        api.server.should_exit = True
        await task


async def create_tenants(api_url: str, slugs: Sequence[str], concurrency: int) -> list[str]:
    """``concurrency`` clients, each creating a workspace and waiting until it is active, then the next.

    Returns what went wrong, one line per tenant that did not become active.
    """
    failures: list[str] = []
    queue = list(reversed(slugs))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def one(client: httpx.AsyncClient, slug: str) -> None:
        response = await client.post("/tenants", json={"slug": slug, "name": f"Bench {slug}"})
        if response.status_code != 201:
            failures.append(f"{slug}: create answered {response.status_code} {response.text[:200]}")
            return
        body = response.json()
        deadline = time.monotonic() + TENANT_DEADLINE_SECONDS
        while body["status"] != "active":
            if time.monotonic() > deadline:
                failures.append(
                    f"{slug}: still {body['status']} after {TENANT_DEADLINE_SECONDS:g} s: {body['provisioningStatus']}"
                )
                return
            await asyncio.sleep(POLL_SECONDS)
            body = (await client.get(f"/tenants/{slug}")).json()

    async def client_loop(client: httpx.AsyncClient) -> None:
        while queue:
            slug = queue.pop()
            try:
                await one(client, slug)
            except (httpx.HTTPError, ValueError, KeyError) as err:  # a broken answer fails that tenant only
                failures.append(f"{slug}: {type(err).__name__}: {err}")

    async with httpx.AsyncClient(base_url=api_url, timeout=TENANT_DEADLINE_SECONDS, limits=limits) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
    return failures


async def times_to_active(settings: Settings, prefix: str) -> list[float]:
    """Seconds from ``created_at`` to ``activated_at`` of every tenant of this run that became active."""
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(Tenant.created_at, Tenant.activated_at).where(
                        Tenant.slug.startswith(prefix), Tenant.activated_at.is_not(None)
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    return [(activated - created).total_seconds() for created, activated in rows]


# -- figures ------------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile: always a time some tenant really took, never an interpolation."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


@dataclass
class Figures:
    tenants: int
    latency_ms: float
    wall_seconds: float
    cpu_seconds: float
    times: list[float]  # seconds from create to active, one per tenant that became active
    requests: dict[str, tuple[int, int]]  # per upstream: (logged requests, of which errors)
    peak_rss_mib: float
    sandbox_peak_rss_mib: float | None = None

    @property
    def active(self) -> int:
        return len(self.times)

    def round_trips(self, upstream: str) -> float:
        return self.requests.get(upstream, (0, 0))[0] / self.tenants

    @property
    def chain(self) -> float:
        """Round trips of the longest step: a tenant's steps run concurrently, each calling its upstream one
        request after another, so the longest step is the sequential chain no tenant can beat."""
        return max((self.round_trips(name) for name in UPSTREAMS), default=0.0)

    @property
    def floor_ms(self) -> float:
        return self.chain * self.latency_ms

    @property
    def mean_ms(self) -> float | None:
        return 1000 * sum(self.times) / len(self.times) if self.times else None

    def rows(self) -> list[tuple[str, str]]:
        ms = [1000 * t for t in self.times]
        mean = self.mean_ms
        rows = [
            ("tenants active", f"{self.active}/{self.tenants}"),
            ("wall time", f"{self.wall_seconds:.1f} s"),
            ("tenants/s", f"{self.active / self.wall_seconds:.1f}"),
        ]
        rows += [(f"time-to-active p{p}", f"{percentile(ms, p):.1f} ms" if ms else "n/a") for p in (50, 90, 99)]
        rows.append(("time-to-active mean", f"{mean:.1f} ms" if mean is not None else "n/a"))
        for name in UPSTREAMS:
            errors = self.requests.get(name, (0, 0))[1]
            note = f" ({errors} answered with an error)" if errors else ""
            rows.append((f"round trips/tenant {name}", f"{self.round_trips(name):.2f}{note}"))
        rows.append(("round trips/tenant total", f"{sum(self.round_trips(name) for name in UPSTREAMS):.2f}"))
        rows.append(("latency floor", f"{self.floor_ms:.1f} ms"))
        ratio = f"{mean / self.floor_ms:.2f}" if mean is not None and self.floor_ms > 0 else "n/a"
        rows.append(("mean time-to-active / floor", ratio))
        rows.append(
            (
                "CPU time (this process)",
                f"{self.cpu_seconds:.1f} s, {1000 * self.cpu_seconds / self.tenants:.1f} ms/tenant",
            )
        )
        rows.append(("peak RSS (this process)", f"{self.peak_rss_mib:.0f} MiB"))
        if self.sandbox_peak_rss_mib is not None:
            rows.append(("peak RSS (sandbox process)", f"{self.sandbox_peak_rss_mib:.0f} MiB"))
        return rows

    def floor_explanation(self) -> list[str]:
        chains = ", ".join(f"{name} {self.round_trips(name):.2f}" for name in UPSTREAMS)
        return [
            f"latency floor = max({chains}) round trips x {self.latency_ms:g} ms = {self.floor_ms:.1f} ms",
            "  A tenant's three steps run concurrently; each step calls its upstream one request after another,",
            "  and every request waits the injected latency. So no tenant can become active sooner than its",
            "  longest step's round trips times the latency: that is the floor. Round trips per tenant are the",
            "  sandboxes' logged requests divided by the tenants (one-off requests, such as Stalwart's session,",
            "  are spread over all of them). The ratio shows what the product adds on top: its own work",
            "  (CPU, store) and waiting its turn when more creations are in flight than it can serve at once.",
        ]


def render(figures: Figures, header: str) -> str:
    rows = figures.rows()
    width = max(len(label) for label, _ in rows)
    lines = [header, ""]
    lines += [f"  {label:<{width}}  {value}" for label, value in rows]
    lines += ["", *(f"  {line}" for line in figures.floor_explanation())]
    return "\n".join(lines)


def _rss_mib(maxrss: int) -> float:
    # ru_maxrss counts KiB on Linux (bytes on macOS).
    return maxrss / (1024 * 1024) if sys.platform == "darwin" else maxrss / 1024


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- main ---------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Provision many tenants against the sandbox and print figures.")
    parser.add_argument("--tenants", type=int, default=1000, help="tenants to create (default 1000)")
    parser.add_argument(
        "--latency-ms", type=float, default=20.0, help="latency the sandboxes add to every request (default 20)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker loops beside the API (default 1, as `tenantry serve` runs); they finish "
        "tenants the API's own first reconcile left pending",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=20,
        help="workspace creations in flight (default 20); also each worker loop's concurrency",
    )
    parser.add_argument(
        "--database",
        default=None,
        help="database URL, e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/bench; it is "
        "migrated and keeps this run's tenants (default: a temporary SQLite file)",
    )
    parser.add_argument(
        "--dkim-delay-ms",
        type=float,
        default=0.0,
        help="how long Stalwart takes to generate a new domain's DKIM keys (default 0); a step "
        "that finds none is pending and a worker looks again after "
        "TENANTRY_PENDING_POLL_SECONDS",
    )
    parser.add_argument("--log-level", default="WARNING", help="the product's log level (default WARNING)")
    args = parser.parse_args(argv)
    if args.tenants < 1 or args.concurrency < 1:
        parser.error("--tenants and --concurrency must be at least 1")
    if args.workers < 0 or args.latency_ms < 0 or args.dkim_delay_ms < 0:
        parser.error("--workers, --latency-ms and --dkim-delay-ms must not be negative")
    if args.workers == 0 and args.dkim_delay_ms > 0:
        parser.error("with --dkim-delay-ms a worker loop must finish the pending step: use --workers 1 or more")
    return args


async def run(args: argparse.Namespace, upstream: Sandboxes, database_url: str) -> Figures:
    from tenantry.logging import configure_logging

    settings = Settings(
        database_url=database_url,
        auth_enabled=False,
        log_level=args.log_level,
        mail_domain_base="bench.example.test",
        run_worker_in_api=args.workers > 0,
        worker_concurrency=args.concurrency,
        worker_batch_size=args.concurrency,
        **upstream.settings,
    )
    configure_logging(settings.log_level)
    engine = create_engine(settings)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()

    prefix = f"bench-{uuid.uuid4().hex[:8]}-"
    slugs = [f"{prefix}{i:05d}" for i in range(args.tenants)]
    async with product(settings, args.workers) as api_url:
        await clear_request_logs(upstream.urls)
        cpu_before, started = _cpu_seconds(), time.perf_counter()
        failures = await create_tenants(api_url, slugs, args.concurrency)
        wall, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_before
        requests = await logged_requests(upstream.urls)
    for failure in failures[:10]:
        print(f"not active: {failure}", file=sys.stderr)
    return Figures(
        tenants=args.tenants,
        latency_ms=args.latency_ms,
        wall_seconds=wall,
        cpu_seconds=cpu,
        times=await times_to_active(settings, prefix),
        requests=requests,
        peak_rss_mib=_rss_mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss),
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.ExitStack() as stack:
        if args.database:
            database_url = args.database
            store = "PostgreSQL" if args.database.startswith("postgresql") else "the given database"
        else:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tenantry-bench-")))
            database_url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
            store = "SQLite (a temporary file)"
        with sandboxes(args.latency_ms, args.dkim_delay_ms / 1000) as upstream:
            figures = asyncio.run(run(args, upstream, database_url))
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    figures.sandbox_peak_rss_mib = _rss_mib(children) if children else None
    header = (
        f"Provisioned {args.tenants} tenants through the API: {args.latency_ms:g} ms injected on every "
        f"sandbox request, {args.concurrency} creations in flight, {args.workers} worker loop(s), "
        f"store {store}"
    )
    print(render(figures, header))
    return 0 if figures.active == figures.tenants else 1


if __name__ == "__main__":
    sys.exit(main())
