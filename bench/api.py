"""API benchmark: authenticated reads from a separate load generator at fixed offered rates, N tenants stored.

Three kinds of process: the product (``tenantry serve``, with API authentication on and trusting the sandbox
OIDC issuer, as deployed against authentik), the sandbox upstreams with that issuer (bench/sandbox_proc.py,
which mints the platform admins' access tokens), and the load generator (bench/loadgen.py, open loop: each
request is sent when it is due, whatever the answers before it did). For each endpoint and each offered rate
one load run: p50/p90/p99 latency from when each request was due, the rate achieved, the answers, and the
product's CPU and run-queue time per request (/proc). The store holds ``--tenants`` tenants seeded directly
(bench/seeding.py). See bench/README.md.

    .venv/bin/python bench/api.py [--tenants N] [--rates 100,250,500] [--duration S] [--endpoints one,list]
        [--processes P] [--database URL] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in {None, ""}:  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import harness, procstat

ENDPOINTS = {"one": "/tenants/{slug}", "list": "/tenants?limit=100"}
LABELS = {"one": "GET /tenants/{slug}", "list": "GET /tenants?limit=100"}


async def load(
    url: str, path: str, rate: float, args: argparse.Namespace, token_file: Path, slugs: str
) -> dict[str, Any]:
    command = [
        sys.executable,
        str(harness.BENCH / "loadgen.py"),
        f"--url={url}",
        f"--path={path}",
        f"--slugs={slugs}",
        f"--rate={rate}",
        f"--duration={args.duration}",
        f"--warmup={args.warmup}",
        f"--token-file={token_file}",
    ]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=harness.ROOT
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"the load generator failed ({process.returncode}): {err.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def quiet(pid: int, within: float = 120.0) -> float:
    """Wait until the product has worked off the previous load (under 5 % of a core for a second): an
    overloaded run leaves requests queued, and they would be charged to the next. Returns the seconds waited."""
    waited = 0.0
    before = procstat.usage(pid).cpu_seconds
    while waited < within:
        await asyncio.sleep(1.0)
        waited += 1.0
        now = procstat.usage(pid).cpu_seconds
        if now - before < 0.05:
            break
        before = now
    return waited


async def run(args: argparse.Namespace) -> dict[str, Any]:
    prefix = f"a{harness.run_id()}-"
    runs: list[dict[str, Any]] = []
    with harness.workdir() as work, harness.sandbox(work, seed=args.tenants, prefix=prefix) as upstream:
        assert upstream.ids is not None
        token_file = work / "token"
        token_file.touch(mode=0o600)
        token_file.write_text(upstream.tokens[0])
        async with harness.fresh_store(args.database, work) as url:
            seeded = await harness.seed(url, prefix, upstream.ids)
            env = harness.product_env(
                upstream,
                url,
                log_level=args.log_level,
                auth_enabled=True,
                resync_interval_seconds=86400,  # no bulk resync pass lands in the middle of a measurement
            )
            serve_args = ["--no-worker", f"--processes={args.processes}"] if args.processes > 1 else []
            async with harness.serve(env, work, *serve_args) as api:
                assert api.url is not None
                for endpoint in args.endpoints:
                    for rate in args.rates:
                        drained = await quiet(api.pid)
                        meter = procstat.Meter(api.pid).start()
                        result = await load(
                            api.url, ENDPOINTS[endpoint], rate, args, token_file, f"{prefix}:{args.tenants}"
                        )
                        spent = meter.stop()
                        sent = result["sent"]
                        runs.append(
                            {
                                "endpoint": LABELS[endpoint],
                                **result,
                                "product_cpu_seconds": spent["cpu_seconds"],
                                "product_cpu_ms_per_request": round(1000 * spent["cpu_seconds"] / sent, 3),
                                "product_cpu_ms_per_answer": round(
                                    1000 * spent["cpu_seconds"] / max(1, result["answered_all"]), 3
                                ),
                                "product_runqueue_seconds": spent["runqueue_seconds"],
                                "product_runqueue_ms_per_request": round(1000 * spent["runqueue_seconds"] / sent, 3),
                                "product_processes": spent["processes"],
                                "quiet_wait_seconds": drained,
                                "load_average_start": spent["load_average_start"],
                                "load_average_end": spent["load_average_end"],
                            }
                        )
                        latency = result["latency_ms"]
                        print(
                            f"{LABELS[endpoint]} at {rate:g}/s: p50 {latency.get('p50')} ms, "
                            f"p99 {latency.get('p99')} ms, {result['achieved_rate']}/s",
                            file=sys.stderr,
                            flush=True,
                        )
                peak = sum(procstat.peak_rss_mib(pid) for pid in procstat.tree(api.pid))
    return {
        "benchmark": "api",
        "machine": harness.machine(),
        "store": "PostgreSQL" if (args.database or "").startswith("postgresql") else "SQLite",
        "tenants": args.tenants,
        "api_processes": args.processes,
        "seed_seconds": {"sandbox": upstream.seed_seconds, "store": round(seeded, 2)},
        "product_peak_rss_mib": round(peak, 1),
        "runs": runs,
    }


def table_rows(runs: Sequence[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    def col(get: Any) -> list[str]:
        return [get(r) for r in runs]

    def latency(p: str) -> Any:
        return lambda r: harness.fmt(r["latency_ms"].get(p), ".1f", " ms")

    return [
        ("offered", col(lambda r: f"{r['offered_rate']:g}/s")),
        ("achieved", col(lambda r: f"{r['achieved_rate']:.0f}/s")),
        ("latency p50", col(latency("p50"))),
        ("latency p90", col(latency("p90"))),
        ("latency p99", col(latency("p99"))),
        ("latency max", col(latency("max"))),
        ("answers", col(lambda r: " ".join(f"{k}:{v}" for k, v in sorted(r["statuses"].items())) or "none")),
        ("errors", col(lambda r: " ".join(f"{k}:{v}" for k, v in sorted(r["errors"].items())) or "0")),
        ("product CPU/request sent", col(lambda r: f"{r['product_cpu_ms_per_request']:.2f} ms")),
        ("product CPU/answer", col(lambda r: f"{r['product_cpu_ms_per_answer']:.2f} ms")),
        ("product run-queue/request", col(lambda r: f"{r['product_runqueue_ms_per_request']:.2f} ms")),
        ("load generator CPU", col(lambda r: f"{r['generator_cpu_seconds']:.1f} s")),
        ("load average (1 min)", col(lambda r: harness.load_text(r["load_average_start"], r["load_average_end"]))),
    ]


def _floats(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def parse_endpoints(text: str) -> list[str]:
    """``--endpoints``: a comma list of ENDPOINTS' names (shared with bench/api_cpu.py)."""
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [c for c in chosen if c not in ENDPOINTS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown endpoint(s) {unknown}; choose from {sorted(ENDPOINTS)}")
    return chosen


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Authenticated API reads at fixed offered rates.")
    parser.add_argument("--tenants", type=int, default=10000, help="tenants in the store (default 10000)")
    parser.add_argument("--rates", type=_floats, default=[100.0, 250.0, 500.0], help="offered rates, req/s")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per rate (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds sent first, not counted (default 2)")
    parser.add_argument(
        "--endpoints", type=parse_endpoints, default=["one", "list"], help="one (GET /tenants/{slug}), list, or both"
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="API processes (`tenantry serve --processes P --no-worker`; default 1, `serve` with its worker)",
    )
    parser.add_argument("--database", default=None, help="PostgreSQL server URL (default: a temporary SQLite file)")
    parser.add_argument("--log-level", default="WARNING", help="the product's log level (default WARNING)")
    parser.add_argument("--json", type=Path, help="also write every figure as JSON to this path")
    args = parser.parse_args(argv)
    if args.tenants < 1 or not args.rates or min(args.rates) <= 0 or args.processes < 1:
        parser.error("--tenants, --rates and --processes must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = harness.run_measured(lambda: run(args))
    title = (
        f"Authenticated API reads against `tenantry serve` ({report['store']}, {report['api_processes']} API "
        f"process(es)): {args.tenants} tenants, open-loop load from a separate process, "
        f"{args.duration:g} s measured per rate"
    )
    columns = [f"{r['endpoint']} @{r['offered_rate']:g}" for r in report["runs"]]
    harness.print_table(title, columns, table_rows(report["runs"]))
    print(harness.machine_text(report["machine"]))
    harness.write_json(args.json, report)
    return 0 if all(not r["errors"] and set(r["statuses"]) == {"200"} for r in report["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
