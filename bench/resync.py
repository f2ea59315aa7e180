"""Resync benchmark: bulk drift resync passes over N healthy tenants, in a worker process of the product.

Three kinds of process: the worker (bench/worker_proc.py: ``tenantry worker``'s loop, plus a pass started on
SIGUSR1), the sandbox upstreams (bench/sandbox_proc.py, seeded with every tenant's objects), and this one,
which seeds the store with the matching rows (every step ``ok`` with its upstream ids), starts ``--passes``
passes one after another and reads each pass's report from the worker. Per pass: its wall time (measured in
the worker around ``Worker.resync_once``), the worker's CPU and run-queue time (/proc), the requests each
upstream logged, and what the pass found (it should find every tenant in sync). See bench/README.md.

    .venv/bin/python bench/resync.py [--tenants N] [--passes P] [--latency-ms L] [--database URL] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in {None, ""}:  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import harness, procstat
from bench.harness import UPSTREAMS

PASS_DEADLINE_SECONDS = 1800.0


def worker_command() -> list[str]:
    return [sys.executable, str(harness.BENCH / "worker_proc.py")]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    prefix = f"r{harness.run_id()}-"
    with (
        harness.workdir() as work,
        harness.sandbox(work, seed=args.tenants, prefix=prefix, latency_ms=args.latency_ms) as upstream,
    ):
        assert upstream.ids is not None
        async with harness.fresh_store(args.database, work) as url:
            seeded = await harness.seed(url, prefix, upstream.ids)
            env = harness.product_env(
                upstream,
                url,
                log_level=args.log_level,
                auth_enabled=False,
                resync_interval_seconds=86400,  # no pass of its own: each is started by SIGUSR1
            )
            async with harness.product("worker", worker_command(), env, work) as worker:
                await worker.wait_event("bench.worker.ready", 120)
                await asyncio.sleep(args.settle)  # the loop's first claim and retry sweep are done
                passes = []
                for n in range(args.passes):
                    await harness.clear_request_logs(upstream.urls)
                    procstat.reset_peak(worker.pid)
                    meter = procstat.Meter(worker.pid).start()
                    os.kill(worker.pid, signal.SIGUSR1)
                    done = await worker.wait_event("bench.resync.done", PASS_DEADLINE_SECONDS)
                    spent = meter.stop()
                    requests = harness.count_requests(await harness.request_logs(upstream.urls))
                    passes.append(_pass(n + 1, args.tenants, done, spent, requests, procstat.peak_rss_mib(worker.pid)))
                    print(f"pass {n + 1}: {done.get('seconds')} s", file=sys.stderr, flush=True)
        sandbox_rss = upstream.peak_rss_mib()
    return {
        "benchmark": "resync",
        "machine": harness.machine(),
        "store": "PostgreSQL" if (args.database or "").startswith("postgresql") else "SQLite",
        "tenants": args.tenants,
        "latency_ms": args.latency_ms,
        "seed_seconds": {"sandbox": upstream.seed_seconds, "store": round(seeded, 2)},
        "sandbox_peak_rss_mib": round(sandbox_rss, 1),
        "passes": passes,
    }


def _pass(
    number: int,
    tenants: int,
    done: dict[str, Any],
    spent: dict[str, Any],
    requests: dict[str, dict[str, int]],
    peak_rss: float,
) -> dict[str, Any]:
    return {
        "pass": number,
        "seconds": done.get("seconds"),
        "listed": done.get("listed", {}),
        "compared": done.get("compared"),
        "drifted": done.get("drifted"),
        "drift_examples": done.get("drift_examples", []),
        "failed": done.get("failed", {}),
        "requests": requests,
        "requests_per_tenant": {name: round(requests[name]["requests"] / tenants, 5) for name in UPSTREAMS},
        "worker_cpu_seconds": spent["cpu_seconds"],
        "worker_cpu_ms_per_tenant": round(1000 * spent["cpu_seconds"] / tenants, 4),
        "worker_runqueue_seconds": spent["runqueue_seconds"],
        "worker_peak_rss_mib": round(peak_rss, 1),
        "wall_seconds_seen_by_bench": spent["wall_seconds"],
        "load_average_start": spent["load_average_start"],
        "load_average_end": spent["load_average_end"],
    }


def table_rows(passes: Sequence[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    def col(get: Any) -> list[str]:
        return [get(p) for p in passes]

    rows = [
        ("time for the pass", col(lambda p: harness.fmt(p["seconds"], ".2f", " s"))),
        ("tenant steps compared", col(lambda p: str(p["compared"]))),
        ("drifted (woken)", col(lambda p: str(p["drifted"]))),
    ]
    for name in UPSTREAMS:
        rows.append((f"requests {name}", col(lambda p, n=name: _requests(p, n))))
    for name in UPSTREAMS:
        rows.append((f"requests/tenant {name}", col(lambda p, n=name: f"{p['requests_per_tenant'][n]:.4f}")))
    rows += [
        ("worker CPU", col(lambda p: f"{p['worker_cpu_seconds']:.2f} s")),
        ("worker CPU/tenant", col(lambda p: f"{p['worker_cpu_ms_per_tenant']:.3f} ms")),
        ("worker run-queue", col(lambda p: f"{p['worker_runqueue_seconds']:.2f} s")),
        ("worker peak RSS", col(lambda p: f"{p['worker_peak_rss_mib']:.0f} MiB")),
        ("load average (1 min)", col(lambda p: harness.load_text(p["load_average_start"], p["load_average_end"]))),
    ]
    return rows


def _requests(p: dict[str, Any], name: str) -> str:
    counted = p["requests"][name]
    return f"{counted['requests']}" + (f" ({counted['errors']} err)" if counted["errors"] else "")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Time bulk resync passes over many healthy tenants.")
    parser.add_argument("--tenants", type=int, default=10000, help="healthy tenants (default 10000)")
    parser.add_argument("--passes", type=int, default=2, help="passes, one after another (default 2)")
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="latency the sandboxes add to every request (default 0)"
    )
    parser.add_argument("--database", default=None, help="PostgreSQL server URL (default: a temporary SQLite file)")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds the worker idles before the first pass")
    parser.add_argument("--log-level", default="WARNING", help="the worker's log level (default WARNING)")
    parser.add_argument("--json", type=Path, help="also write every figure as JSON to this path")
    args = parser.parse_args(argv)
    if args.tenants < 1 or args.passes < 1:
        parser.error("--tenants and --passes must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = harness.run_measured(lambda: run(args))
    title = (
        f"Bulk resync in a worker process ({report['store']}): {args.tenants} healthy tenants, "
        f"{args.latency_ms:g} ms injected on every sandbox request"
    )
    harness.print_table(title, [f"pass {p['pass']}" for p in report["passes"]], table_rows(report["passes"]))
    print(harness.machine_text(report["machine"]))
    harness.write_json(args.json, report)
    clean = all(p["drifted"] == 0 and not p["failed"] for p in report["passes"])
    if not clean:
        print("a pass found drift or could not list an upstream: see drift_examples/failed in the JSON")
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
