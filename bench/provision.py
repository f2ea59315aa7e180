"""Provisioning benchmark: workspaces created through the HTTP API of ``tenantry serve`` against the sandbox.

Three kinds of process: the product (``tenantry serve`` with its in-process worker, plus ``tenantry worker``
processes with ``--workers``), the sandbox upstreams (bench/sandbox_proc.py, seeded with ``--existing``
tenants and adding ``--latency-ms`` to every request), and this one, the load generator: ``--concurrency``
clients, each creating a workspace and waiting until it is active before it creates the next. Every
combination of ``--concurrency`` and ``--existing`` is one run on a fresh store and sandbox. The figures come
from the store (each tenant's ``created_at`` and ``activated_at``, both stamped by the product), the
sandboxes' request logs, and /proc for the product's CPU and run-queue time. See bench/README.md.

    .venv/bin/python bench/provision.py [--tenants N] [--concurrency C[,C...]] [--existing E[,E...]]
        [--latency-ms L] [--workers W] [--processes P] [--database URL] [--dkim-delay-ms D] [--log-level LEVEL]
        [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in {None, ""}:  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import sqlalchemy as sa
from bench import harness, procstat
from bench.harness import UPSTREAMS, percentile

from tenantry.tenants.models import Tenant

POLL_SECONDS = 0.25  # how often a client looks again at a tenant not yet active (timing comes from the store)
TENANT_DEADLINE_SECONDS = 300.0


@dataclass
class Figures:
    """One run's figures."""

    tenants: int
    concurrency: int
    existing: int
    latency_ms: float
    wall_seconds: float
    times: list[float] = field(repr=False)  # seconds from create to active, one per tenant that became active
    requests: dict[str, dict[str, int]]  # per upstream: requests logged, of which answered with an error
    product: dict[str, Any]  # procstat.Meter figures of the product's processes over the run
    answers: dict[str, int] = field(default_factory=dict)  # POST /tenants answers by status
    polls: int = 0
    create_latencies: list[float] = field(default_factory=list, repr=False)
    until_active: list[float] = field(default_factory=list, repr=False)
    product_peak_rss_mib: float | None = None
    sandbox_peak_rss_mib: float | None = None
    seed_seconds: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    injected_ms: float | None = None  # the latency the sandboxes measured adding, mean per request

    @property
    def active(self) -> int:
        return len(self.times)

    def round_trips(self, upstream: str) -> float:
        return self.requests.get(upstream, {}).get("requests", 0) / self.tenants

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

    @property
    def ratio(self) -> float | None:
        mean = self.mean_ms
        return mean / self.floor_ms if mean is not None and self.floor_ms > 0 else None

    def summary(self) -> dict[str, Any]:
        ms = [1000 * t for t in self.times]
        creates = [1000 * t for t in self.create_latencies]
        cpu, queued = self.product["cpu_seconds"], self.product["runqueue_seconds"]
        return {
            "tenants": self.tenants,
            "concurrency": self.concurrency,
            "existing": self.existing,
            "latency_ms": self.latency_ms,
            "active": self.active,
            "wall_seconds": round(self.wall_seconds, 3),
            "tenants_per_second": round(self.active / self.wall_seconds, 2) if self.wall_seconds else None,
            "time_to_active_ms": {
                **{f"p{p}": round(percentile(ms, p), 1) for p in (50, 90, 99) if ms},
                "mean": round(self.mean_ms, 1) if self.mean_ms is not None else None,
            },
            "requests_per_tenant": {name: round(self.round_trips(name), 3) for name in UPSTREAMS},
            "requests_per_tenant_total": round(sum(self.round_trips(name) for name in UPSTREAMS), 3),
            "upstream_requests": self.requests,
            "latency_floor_ms": round(self.floor_ms, 2),
            "injected_latency_ms": self.injected_ms,
            "mean_over_floor": round(self.ratio, 2) if self.ratio is not None else None,
            "product_cpu_ms_per_tenant": round(1000 * cpu / self.tenants, 2),
            "product_runqueue_ms_per_tenant": round(1000 * queued / self.tenants, 2),
            "product": self.product,
            "product_peak_rss_mib": self.product_peak_rss_mib,
            "sandbox_peak_rss_mib": self.sandbox_peak_rss_mib,
            "create_answers": self.answers,
            "create_latency_ms": {f"p{p}": round(percentile(creates, p), 1) for p in (50, 99)} if creates else {},
            "client_time_to_active_ms": _spread([1000 * t for t in self.until_active]),
            "polls_per_tenant": round(self.polls / self.tenants, 2),
            "seed_seconds": self.seed_seconds,
            "failures": self.failures[:20],
        }


def _spread(ms: list[float]) -> dict[str, float]:
    if not ms:
        return {}
    mean = sum(ms) / len(ms)
    return {"p50": round(percentile(ms, 50), 1), "p99": round(percentile(ms, 99), 1), "mean": round(mean, 1)}


def table_rows(runs: Sequence[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    def col(get: Any) -> list[str]:
        return [get(r) for r in runs]

    rows = [
        ("tenants active", col(lambda r: f"{r['active']}/{r['tenants']}")),
        ("wall time", col(lambda r: f"{r['wall_seconds']:.1f} s")),
        ("tenants/s", col(lambda r: harness.fmt(r["tenants_per_second"]))),
    ]
    for p in ("p50", "p90", "p99", "mean"):
        rows.append((f"time-to-active {p}", col(lambda r, p=p: harness.fmt(r["time_to_active_ms"].get(p), unit=" ms"))))
    for name in UPSTREAMS:
        rows.append((f"requests/tenant {name}", col(lambda r, n=name: _trips(r, n))))
    rows += [
        ("requests/tenant total", col(lambda r: f"{r['requests_per_tenant_total']:.2f}")),
        ("latency floor", col(lambda r: f"{r['latency_floor_ms']:.1f} ms")),
        ("injected latency (measured mean)", col(lambda r: harness.fmt(r.get("injected_latency_ms"), ".2f", " ms"))),
        ("mean time-to-active / floor", col(lambda r: harness.fmt(r["mean_over_floor"], ".2f"))),
        ("product CPU/tenant", col(lambda r: f"{r['product_cpu_ms_per_tenant']:.1f} ms")),
        ("product run-queue/tenant", col(lambda r: f"{r['product_runqueue_ms_per_tenant']:.1f} ms")),
        ("product CPU / wall", col(lambda r: f"{r['product']['cpu_seconds'] / r['wall_seconds']:.2f}")),
        ("create answers", col(lambda r: " ".join(f"{k}:{v}" for k, v in sorted(r["create_answers"].items())))),
        ("create answer p50/p99", col(lambda r: _pair(r["create_latency_ms"]))),
        ("client time-to-active mean", col(lambda r: _mean(r.get("client_time_to_active_ms", {})))),
        ("polls/tenant", col(lambda r: f"{r['polls_per_tenant']:.2f}")),
        ("product peak RSS", col(lambda r: harness.fmt(r["product_peak_rss_mib"], ".0f", " MiB"))),
        ("sandbox peak RSS", col(lambda r: harness.fmt(r["sandbox_peak_rss_mib"], ".0f", " MiB"))),
        ("load average (1 min)", col(lambda r: harness.load_text(r["load_average_start"], r["load_average_end"]))),
    ]
    return rows


def _trips(run: dict[str, Any], name: str) -> str:
    errors = run["upstream_requests"].get(name, {}).get("errors", 0)
    return f"{run['requests_per_tenant'][name]:.2f}" + (f" ({errors} err)" if errors else "")


def _mean(values: dict[str, float]) -> str:
    return f"{values['mean']:.1f} ms" if values else "n/a"


def _pair(values: dict[str, float]) -> str:
    return f"{values['p50']:.0f}/{values['p99']:.0f} ms" if values else "n/a"


# -- the load: clients creating workspaces -------------------------------------------------------------------


@dataclass
class Clients:
    failures: list[str] = field(default_factory=list)
    answers: dict[str, int] = field(default_factory=dict)
    polls: int = 0
    create_latencies: list[float] = field(default_factory=list)
    until_active: list[float] = field(default_factory=list)  # first POST sent → seen active, per tenant


async def create_tenants(api_url: str, slugs: Sequence[str], concurrency: int) -> Clients:
    """``concurrency`` clients, each creating a workspace and waiting until it is active, then the next.

    A 503 (the product's back-pressure) is retried after its Retry-After, as a client should.
    """
    out = Clients()
    queue = list(reversed(slugs))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def one(client: httpx.AsyncClient, slug: str) -> None:
        began = time.perf_counter()
        while True:
            sent = time.perf_counter()
            response = await client.post("/tenants", json={"slug": slug, "name": f"Bench {slug}"})
            out.create_latencies.append(time.perf_counter() - sent)
            key = str(response.status_code)
            out.answers[key] = out.answers.get(key, 0) + 1
            if response.status_code != 503:
                break
            await asyncio.sleep(float(response.headers.get("retry-after", "1")))
        if response.status_code != 201:
            out.failures.append(f"{slug}: create answered {response.status_code} {response.text[:200]}")
            return
        body = response.json()
        deadline = time.monotonic() + TENANT_DEADLINE_SECONDS
        while body["status"] != "active":
            if time.monotonic() > deadline:
                out.failures.append(
                    f"{slug}: still {body['status']} after {TENANT_DEADLINE_SECONDS:g} s: {body['provisioningStatus']}"
                )
                return
            await asyncio.sleep(POLL_SECONDS)
            out.polls += 1
            body = (await client.get(f"/tenants/{slug}")).json()
        out.until_active.append(time.perf_counter() - began)

    async def client_loop(client: httpx.AsyncClient) -> None:
        while queue:
            slug = queue.pop()
            try:
                await one(client, slug)
            except (httpx.HTTPError, ValueError, KeyError) as err:  # a broken answer fails that tenant only
                out.failures.append(f"{slug}: {type(err).__name__}: {err}")

    async with httpx.AsyncClient(base_url=api_url, timeout=TENANT_DEADLINE_SECONDS, limits=limits) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
    return out


async def times_to_active(url: str, prefix: str) -> list[float]:
    """Seconds from ``created_at`` to ``activated_at`` of every tenant of this run that became active."""
    rows = await harness.store_rows(
        url,
        sa.select(Tenant.created_at, Tenant.activated_at).where(
            Tenant.slug.startswith(prefix), Tenant.activated_at.is_not(None)
        ),
    )
    return [(activated - created).total_seconds() for created, activated in rows]


def serve_options(args: argparse.Namespace) -> list[str]:
    """``tenantry serve``'s options: its API processes, and whether one of them runs the worker loop."""
    if args.processes > 1:
        return ["--processes", str(args.processes), "--no-worker"]  # the worker loop runs in its own process
    return ["--no-worker"] if args.workers == 0 else []


def worker_processes(args: argparse.Namespace) -> int:
    """``tenantry worker`` processes beside ``serve``: all the worker loops when several API processes serve,
    else the ones beyond serve's own."""
    return args.workers if args.processes > 1 else max(0, args.workers - 1)


# -- one run ------------------------------------------------------------------------------------------------


async def one_run(args: argparse.Namespace, concurrency: int, existing: int) -> dict[str, Any]:
    run = harness.run_id()
    seed_prefix, prefix = f"s{run}-", f"b{run}-"
    with (
        harness.workdir() as work,
        harness.sandbox(
            work, seed=existing, prefix=seed_prefix, latency_ms=args.latency_ms, dkim_delay_ms=args.dkim_delay_ms
        ) as upstream,
    ):
        async with harness.fresh_store(args.database, work) as url:
            seeded = await harness.seed(url, seed_prefix, upstream.ids) if upstream.ids else 0.0
            env = harness.product_env(
                upstream,
                url,
                log_level=args.log_level,
                auth_enabled=False,
                worker_concurrency=concurrency,
                worker_batch_size=concurrency,
            )
            async with contextlib.AsyncExitStack() as stack:
                api = await stack.enter_async_context(harness.serve(env, work, *serve_options(args)))
                workers = [
                    await stack.enter_async_context(
                        harness.product(f"worker{n}", [str(harness.TENANTRY), "worker"], env, work)
                    )
                    for n in range(worker_processes(args))
                ]
                pids = [api.pid, *(w.pid for w in workers)]
                await harness.clear_request_logs(upstream.urls)
                meters = [procstat.Meter(pid).start() for pid in pids]
                started = time.perf_counter()
                slugs = [f"{prefix}{i:05d}" for i in range(args.tenants)]
                clients = await create_tenants(api.url or "", slugs, concurrency)
                wall = time.perf_counter() - started
                spent = [m.stop() for m in meters]
                peak = sum(procstat.peak_rss_mib(pid) for pid in procstat.tree(api.pid))
                logs = await harness.request_logs(upstream.urls)
            figures = Figures(
                tenants=args.tenants,
                concurrency=concurrency,
                existing=existing,
                latency_ms=args.latency_ms,
                wall_seconds=wall,
                times=await times_to_active(url, prefix),
                requests=harness.count_requests(logs),
                injected_ms=harness.injected_latency(logs),
                product=_combined(spent),
                answers=clients.answers,
                polls=clients.polls,
                create_latencies=clients.create_latencies,
                until_active=clients.until_active,
                product_peak_rss_mib=round(peak, 1),
                sandbox_peak_rss_mib=round(upstream.peak_rss_mib(), 1),
                seed_seconds={"sandbox": upstream.seed_seconds, "store": round(seeded, 2)},
                failures=clients.failures,
            )
    summary = figures.summary()
    summary["load_average_start"] = figures.product["load_average_start"]
    summary["load_average_end"] = figures.product["load_average_end"]
    for failure in figures.failures[:10]:
        print(f"not active: {failure}", file=sys.stderr)
    return summary


def _combined(meters: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The figures of several product processes over the same interval, added up."""
    first = dict(meters[0])
    for other in meters[1:]:
        for key in ("cpu_seconds", "runqueue_seconds", "processes"):
            first[key] = round(first[key] + other[key], 3)
    return first


# -- main ---------------------------------------------------------------------------------------------------


def _counts(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Provision many tenants against the sandbox and print figures.")
    parser.add_argument("--tenants", type=int, default=1000, help="tenants to create in each run (default 1000)")
    parser.add_argument(
        "--concurrency",
        "--in-flight",
        type=_counts,
        default=[20],
        help="workspace creations in flight, comma-separated for several runs (default 20); also the worker's "
        "concurrency (TENANTRY_WORKER_CONCURRENCY)",
    )
    parser.add_argument(
        "--existing",
        type=_counts,
        default=[0],
        help="tenants that exist before the run (store and upstreams), comma-separated for several runs (default 0)",
    )
    parser.add_argument(
        "--latency-ms", type=float, default=20.0, help="latency the sandboxes add to every request (default 20)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker loops: 1 (default) is `tenantry serve` with its in-process worker, 0 is `serve --no-worker`, "
        "2+ adds `tenantry worker` processes (PostgreSQL only)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="API processes (`tenantry serve --processes P`, default 1); with 2+, the worker loops run in "
        "`tenantry worker` processes of their own",
    )
    parser.add_argument(
        "--database",
        default=None,
        help="PostgreSQL server URL, e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/bench: each run gets a "
        "database of its own beside the one named, dropped afterwards (default: a temporary SQLite file)",
    )
    parser.add_argument(
        "--dkim-delay-ms",
        type=float,
        default=0.0,
        help="how long Stalwart takes to generate a new domain's DKIM keys (default 0); a step that finds none "
        "is pending and a worker looks again after TENANTRY_PENDING_POLL_SECONDS",
    )
    parser.add_argument("--log-level", default="WARNING", help="the product's log level (default WARNING)")
    parser.add_argument("--json", type=Path, help="also write every figure as JSON to this path")
    args = parser.parse_args(argv)
    if args.tenants < 1 or not args.concurrency or min(args.concurrency) < 1:
        parser.error("--tenants and --concurrency must be at least 1")
    if args.workers < 0 or args.latency_ms < 0 or args.dkim_delay_ms < 0 or min(args.existing, default=0) < 0:
        parser.error("--workers, --latency-ms, --existing and --dkim-delay-ms must not be negative")
    if args.workers == 0 and args.dkim_delay_ms > 0:
        parser.error("with --dkim-delay-ms a worker loop must finish the pending step: use --workers 1 or more")
    if args.processes < 1:
        parser.error("--processes must be at least 1")
    if args.workers > 1 and not (args.database or "").startswith("postgresql"):
        parser.error("on SQLite one process runs the worker loop: --workers 2+ needs --database postgresql+asyncpg://…")
    return args


async def run(args: argparse.Namespace) -> dict[str, Any]:
    runs = []
    for existing in args.existing:
        for concurrency in args.concurrency:
            print(f"run: {concurrency} in flight, {existing} existing tenants ...", file=sys.stderr, flush=True)
            runs.append(await one_run(args, concurrency, existing))
    store = "PostgreSQL" if (args.database or "").startswith("postgresql") else "SQLite"
    return {
        "benchmark": "provision",
        "machine": harness.machine(),
        "store": store,
        "workers": args.workers,
        "api_processes": args.processes,
        "latency_ms": args.latency_ms,
        "runs": runs,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = harness.run_measured(lambda: run(args))
    columns = [f"C={r['concurrency']} E={r['existing']}" for r in report["runs"]]
    title = (
        f"Provisioning through `tenantry serve` ({report['store']}): {args.tenants} tenants per run, "
        f"{args.latency_ms:g} ms injected on every sandbox request, {args.processes} API process(es), "
        f"{args.workers} worker loop(s); "
        "C = creations in flight, E = tenants existing before the run"
    )
    harness.print_table(title, columns, table_rows(report["runs"]))
    print(
        "  floor = the most requests per tenant any one upstream got x the latency (a tenant's steps run\n"
        "  concurrently, each a chain of requests); CPU and run-queue time are the product processes' own\n"
        "  (utime+stime and schedstat, every thread) over the run, divided by the tenants created."
    )
    print(harness.machine_text(report["machine"]))
    harness.write_json(args.json, report)
    return 0 if all(r["active"] == r["tenants"] for r in report["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
