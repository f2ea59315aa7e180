"""CPU per upstream request, by the transport under httpx: aiohttp's (what the product uses) against httpx's own.

The sandbox runs in a process of its own (no injected latency); this process sends authentik's group lookup
(``GET /api/v3/core/groups/?name=…``, the product's ``AuthentikClient.find_groups``) through a client made
by ``build_http_client``, ``--in-flight`` at a time. The transports take turns in blocks of ``--requests``
(``--rounds`` each), so that a machine changing speed affects both alike; the figure is this process's CPU
time (``process_time``) per request, the client's alone. See bench/README.md.

    .venv/bin/python bench/http_client.py [--requests N] [--rounds R] [--in-flight C] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in {None, ""}:  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from bench import harness, procstat

from tenantry.integrations.authentik.client import AuthentikClient
from tenantry.integrations.http import build_http_client

TRANSPORTS = ("aiohttp", "httpx")


def _client(kind: str) -> httpx.AsyncClient:
    if kind == "aiohttp":
        return build_http_client()
    return build_http_client(transport=httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=100)))


async def _block(client: AuthentikClient, requests: int, in_flight: int) -> float:
    """Seconds of this process's CPU per request over ``requests`` lookups."""
    share, extra = divmod(requests, in_flight)

    async def lane(count: int) -> None:
        for i in range(count):
            await client.find_groups(name=f"tenant-missing-{i}")

    began = time.process_time()
    await asyncio.gather(*(lane(share + (1 if i < extra else 0)) for i in range(in_flight)))
    return (time.process_time() - began) / requests


async def run(args: argparse.Namespace) -> dict[str, Any]:
    samples: dict[str, list[float]] = {kind: [] for kind in TRANSPORTS}
    with harness.workdir() as work, harness.sandbox(work) as upstream:
        url, token = upstream.settings["authentik_url"], upstream.settings["authentik_token"]
        http = {kind: _client(kind) for kind in TRANSPORTS}
        clients = {kind: AuthentikClient(http[kind], url, token) for kind in TRANSPORTS}
        try:
            for kind in TRANSPORTS:  # warm up: connections open, code paths taken
                await _block(clients[kind], 200, args.in_flight)
            load_start = procstat.load_average()
            for _ in range(args.rounds):
                for kind in TRANSPORTS:
                    samples[kind].append(await _block(clients[kind], args.requests, args.in_flight))
            load_end = procstat.load_average()
        finally:
            for client in http.values():
                await client.aclose()
    medians = {kind: statistics.median(values) for kind, values in samples.items()}
    return {
        "benchmark": "http_client",
        "machine": harness.machine(),
        "requests_per_block": args.requests,
        "rounds": args.rounds,
        "in_flight": args.in_flight,
        "load_average_start": load_start,
        "load_average_end": load_end,
        "cpu_ms_per_request": {kind: [round(1000 * v, 4) for v in values] for kind, values in samples.items()},
        "median_cpu_ms_per_request": {kind: round(1000 * v, 4) for kind, v in medians.items()},
        "httpx_over_aiohttp": round(medians["httpx"] / medians["aiohttp"], 2),
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="CPU per upstream request, by transport.")
    parser.add_argument("--requests", type=int, default=1000, help="requests per block (default 1000)")
    parser.add_argument("--rounds", type=int, default=5, help="blocks per transport, taking turns (default 5)")
    parser.add_argument("--in-flight", type=int, default=10, help="requests in flight at once (default 10)")
    parser.add_argument("--json", type=Path, help="also write every figure as JSON to this path")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.rounds < 1 or args.in_flight < 1:
        parser.error("--requests, --rounds and --in-flight must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = harness.run_measured(lambda: run(args))
    per = report["cpu_ms_per_request"]
    rows = [
        *((f"round {i + 1}", [f"{per[kind][i]:.3f} ms" for kind in TRANSPORTS]) for i in range(args.rounds)),
        ("median", [f"{report['median_cpu_ms_per_request'][kind]:.3f} ms" for kind in TRANSPORTS]),
        ("load average (1 min)", [harness.load_text(report["load_average_start"], report["load_average_end"])] * 2),
    ]
    harness.print_table(
        f"Client CPU per authentik request ({args.requests} per block, {args.in_flight} in flight), by transport",
        list(TRANSPORTS),
        rows,
    )
    print(f"  httpx's own transport / aiohttp's, medians of one run: {report['httpx_over_aiohttp']:.2f}")
    print(harness.machine_text(report["machine"]))
    harness.write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
