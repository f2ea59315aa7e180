"""API CPU per request, in process: the app served through ``httpx.ASGITransport``, N tenants seeded, a token.

No server, no sockets, no load generator: one request at a time, the process's CPU time (``process_time``)
over ``--requests`` requests of each endpoint divided by their number, after a warm-up. The client's share
(httpx building the request and reading the answer) is included, so the figure is an upper bound of the
product's own. The app authenticates as ``bench/api.py``'s does: API authentication on, the platform
admin's access token minted by the in-process sandbox issuer and sent on every request. ``--profile DIR``
also writes a cProfile of each endpoint's measured requests there. See bench/README.md.

    .venv/bin/python bench/api_cpu.py [--tenants N] [--requests R] [--database URL] [--profile DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import cProfile
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in {None, ""}:  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from asgi_lifespan import LifespanManager
from bench import harness, procstat
from bench.api import parse_endpoints
from bench.seeding import SeededIds, seed_slug

from tenantry.app import create_app
from tenantry.config import Settings
from tenantry.container import build_container
from tenantry.sandbox.suite import SandboxSuite
from tenantry.serving import settle_heap

ENDPOINTS = {"one": "GET /tenants/{slug}", "list": "GET /tenants?limit=100"}


def _suite() -> SandboxSuite:
    return SandboxSuite(
        authentik_url="http://authentik.test", stalwart_url="http://stalwart.test", ocis_url="http://ocis.test"
    )


async def measure(url: str, prefix: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    suite = _suite()
    settings = Settings(
        **{**suite.settings(), "database_url": url, "auth_enabled": True, "run_worker_in_api": False},
        log_level="WARNING",
    )
    app = create_app(settings, container_factory=lambda: build_container(settings, transports=suite.transports()))
    token = suite.issuer.mint_token(sub=suite.admin_user.sub, audience=suite.credentials.user_client_id)
    headers = {"Authorization": f"Bearer {token}"}
    pick = random.Random(1)
    paths = {
        "one": lambda: f"/tenants/{seed_slug(prefix, pick.randrange(args.tenants))}",
        "list": lambda: "/tenants?limit=100",
    }
    results = []
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tenantry.test") as client,
    ):
        settle_heap()  # as `tenantry serve` does once the app has started
        for endpoint in args.endpoints:
            path = paths[endpoint]
            for _ in range(args.warmup):
                answer = await client.get(path(), headers=headers)
                answer.raise_for_status()
            profile = cProfile.Profile() if args.profile else None
            size = 0
            began, cpu = time.perf_counter(), time.process_time()
            if profile is not None:
                profile.enable()
            for _ in range(args.requests):
                answer = await client.get(path(), headers=headers)
                answer.raise_for_status()
                size += len(answer.content)
            if profile is not None:
                profile.disable()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - began
            if profile is not None:
                args.profile.mkdir(parents=True, exist_ok=True)
                profile.dump_stats(args.profile / f"{endpoint}.prof")
            results.append(
                {
                    "endpoint": ENDPOINTS[endpoint],
                    "requests": args.requests,
                    "cpu_ms_per_request": round(1000 * cpu / args.requests, 3),
                    "wall_ms_per_request": round(1000 * wall / args.requests, 3),
                    "bytes_per_answer": size // args.requests,
                    "profiled": profile is not None,
                }
            )
    return results


async def run(args: argparse.Namespace) -> dict[str, Any]:
    prefix = f"c{harness.run_id()}-"
    n = args.tenants
    ids = SeededIds([f"g{i}" for i in range(n)], [f"d{i}" for i in range(n)], [f"s{i}" for i in range(n)])
    with harness.workdir() as work:
        async with harness.fresh_store(args.database, work) as url:
            seeded = await harness.seed(url, prefix, ids)
            load_start = procstat.load_average()
            results = await measure(url, prefix, args)
            load_end = procstat.load_average()
    return {
        "benchmark": "api_cpu",
        "machine": harness.machine(),
        "store": "PostgreSQL" if (args.database or "").startswith("postgresql") else "SQLite",
        "tenants": n,
        "seed_seconds": round(seeded, 2),
        "load_average_start": load_start,
        "load_average_end": load_end,
        "runs": results,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="API CPU per request, in process, with a token.")
    parser.add_argument("--tenants", type=int, default=10000, help="tenants in the store (default 10000)")
    parser.add_argument("--requests", type=int, default=300, help="measured requests per endpoint (default 300)")
    parser.add_argument("--warmup", type=int, default=30, help="requests sent first, not measured (default 30)")
    parser.add_argument(
        "--endpoints", type=parse_endpoints, default=["one", "list"], help="one (GET /tenants/{slug}), list, or both"
    )
    parser.add_argument("--database", default=None, help="PostgreSQL server URL (default: a temporary SQLite file)")
    parser.add_argument("--profile", type=Path, help="also write a cProfile of each endpoint (<endpoint>.prof) here")
    parser.add_argument("--json", type=Path, help="also write every figure as JSON to this path")
    args = parser.parse_args(argv)
    if args.tenants < 1 or args.requests < 1 or args.warmup < 0:
        parser.error("--tenants and --requests must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = harness.run_measured(lambda: run(args))
    title = (
        f"API CPU per request in process ({report['store']}, {args.tenants} tenants, {args.requests} requests "
        f"each, client included{', profiled' if args.profile else ''})"
    )
    runs = report["runs"]
    load = harness.load_text(report["load_average_start"], report["load_average_end"])
    rows = [
        ("CPU/request", [f"{r['cpu_ms_per_request']:.3f} ms" for r in runs]),
        ("wall/request", [f"{r['wall_ms_per_request']:.3f} ms" for r in runs]),
        ("bytes/answer", [str(r["bytes_per_answer"]) for r in runs]),
        ("load average (1 min)", [load] * len(runs)),
    ]
    harness.print_table(title, [r["endpoint"] for r in runs], rows)
    print(harness.machine_text(report["machine"]))
    harness.write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
