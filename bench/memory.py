"""Memory benchmark: the worker process's peak RSS in each phase of its life among N existing tenants.

Three kinds of process: the worker (bench/worker_proc.py: ``tenantry worker``'s loop, plus a resync pass on
SIGUSR1), the sandbox upstreams (bench/sandbox_proc.py, seeded with the objects of ``--tenants`` healthy
tenants and of ``--adopt`` tenants to adopt), and this one, which seeds the store and drives the phases:

1. **adopting**: from the worker's start until every tenant due is active: ``--adopt`` tenants whose objects
   exist upstream but whose ids are not stored, each step noting that a create began long ago (so each looks
   its object up by marker, as after a create whose answer was lost), and ``--create`` new tenants created
   from nothing, all among the N existing ones;
2. **resyncing**: one bulk resync pass over all of them (SIGUSR1);
3. **idle**: ``--idle`` seconds of the loop with nothing due.

Per phase: the peak RSS (``VmHWM`` reset at the phase's start through ``/proc/<pid>/clear_refs``, and the
largest ``VmRSS`` sampled every 50 ms), the RSS at its end, its wall time, the worker's CPU and run-queue
time, and the load average. See bench/README.md.

    .venv/bin/python bench/memory.py [--tenants N] [--adopt A] [--create C] [--idle S] [--database URL]
        [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in {None, ""}:  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa
from bench import harness, procstat
from bench.resync import worker_command

from tenantry.tenants.models import Tenant

PHASE_DEADLINE_SECONDS = 3600.0


async def _all_active(url: str, total: int, worker: harness.Process) -> None:
    deadline = time.monotonic() + PHASE_DEADLINE_SECONDS
    query = sa.select(sa.func.count()).select_from(Tenant).where(Tenant.activated_at.is_not(None))
    while (active := await harness.store_scalar(url, query)) < total:
        if harness.popen_done(worker):
            raise RuntimeError(f"the worker exited during the adopting phase ({active}/{total} active)")
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {active}/{total} tenants active after {PHASE_DEADLINE_SECONDS:g} s")
        await asyncio.sleep(0.5)


def _phase(name: str, pid: int, sampler: procstat.RssSampler, spent: dict[str, Any], **extra: Any) -> dict[str, Any]:
    sampled = sampler.phase()
    peak = procstat.peak_rss_mib(pid)
    return {
        "phase": name,
        "peak_rss_mib": round(peak, 1),
        "peak_rss_sampled_mib": round(sampled, 1),
        "rss_at_end_mib": round(procstat.rss_mib(pid), 1),
        "seconds": spent["wall_seconds"],
        "cpu_seconds": spent["cpu_seconds"],
        "runqueue_seconds": spent["runqueue_seconds"],
        "load_average_start": spent["load_average_start"],
        "load_average_end": spent["load_average_end"],
        **extra,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    prefix = f"m{harness.run_id()}-"
    existing = args.tenants + args.adopt
    phases: list[dict[str, Any]] = []
    with harness.workdir() as work, harness.sandbox(work, seed=existing, prefix=prefix) as upstream:
        assert upstream.ids is not None
        async with harness.fresh_store(args.database, work) as url:
            seeded = await harness.seed(url, prefix, upstream.ids, pending=args.adopt, fresh=args.create)
            env = harness.product_env(
                upstream, url, log_level=args.log_level, auth_enabled=False, resync_interval_seconds=86400
            )
            # The phase starts with the process: its peak includes start-up, as a worker's first minutes do.
            async with harness.product("worker", worker_command(), env, work) as worker:
                meter = procstat.Meter(worker.pid).start()
                with procstat.RssSampler(worker.pid) as sampler:
                    await worker.wait_event("bench.worker.ready", 120)
                    await _all_active(url, existing + args.create, worker)
                    phases.append(
                        _phase("adopting", worker.pid, sampler, meter.stop(), tenants=args.adopt + args.create)
                    )
                    print(f"adopting: {phases[-1]['seconds']:.1f} s", file=sys.stderr, flush=True)

                    procstat.reset_peak(worker.pid)
                    sampler.phase()
                    meter = procstat.Meter(worker.pid).start()
                    os.kill(worker.pid, signal.SIGUSR1)
                    done = await worker.wait_event("bench.resync.done", PHASE_DEADLINE_SECONDS)
                    phases.append(
                        _phase(
                            "resyncing",
                            worker.pid,
                            sampler,
                            meter.stop(),
                            compared=done.get("compared"),
                            drifted=done.get("drifted"),
                            duplicates=(done.get("removed") or 0) + (done.get("kept") or 0),
                            pass_seconds=done.get("seconds"),
                        )
                    )
                    print(f"resyncing: {phases[-1]['seconds']:.1f} s", file=sys.stderr, flush=True)

                    procstat.reset_peak(worker.pid)
                    sampler.phase()
                    meter = procstat.Meter(worker.pid).start()
                    await asyncio.sleep(args.idle)
                    phases.append(_phase("idle", worker.pid, sampler, meter.stop()))
            sandbox_rss = upstream.peak_rss_mib()
    return {
        "benchmark": "memory",
        "machine": harness.machine(),
        "store": "PostgreSQL" if (args.database or "").startswith("postgresql") else "SQLite",
        "tenants": args.tenants,
        "adopt": args.adopt,
        "create": args.create,
        "peak_reset_supported": procstat.reset_peak(os.getpid()),
        "seed_seconds": {"sandbox": upstream.seed_seconds, "store": round(seeded, 2)},
        "sandbox_peak_rss_mib": round(sandbox_rss, 1),
        "phases": phases,
    }


def table_rows(phases: Sequence[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    def col(get: Any) -> list[str]:
        return [get(p) for p in phases]

    return [
        ("peak RSS (VmHWM)", col(lambda p: f"{p['peak_rss_mib']:.0f} MiB")),
        ("peak RSS (sampled)", col(lambda p: f"{p['peak_rss_sampled_mib']:.0f} MiB")),
        ("RSS at the end", col(lambda p: f"{p['rss_at_end_mib']:.0f} MiB")),
        ("wall time", col(lambda p: f"{p['seconds']:.1f} s")),
        ("worker CPU", col(lambda p: f"{p['cpu_seconds']:.1f} s")),
        ("worker run-queue", col(lambda p: f"{p['runqueue_seconds']:.1f} s")),
        ("load average (1 min)", col(lambda p: harness.load_text(p["load_average_start"], p["load_average_end"]))),
    ]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Peak RSS of a worker process in each phase, among many tenants.")
    parser.add_argument("--tenants", type=int, default=10000, help="healthy existing tenants (default 10000)")
    parser.add_argument("--adopt", type=int, default=20, help="tenants to adopt by marker (default 20)")
    parser.add_argument("--create", type=int, default=100, help="new tenants to create (default 100)")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of the idle phase (default 10)")
    parser.add_argument("--database", default=None, help="PostgreSQL server URL (default: a temporary SQLite file)")
    parser.add_argument("--log-level", default="WARNING", help="the worker's log level (default WARNING)")
    parser.add_argument("--json", type=Path, help="also write every figure as JSON to this path")
    args = parser.parse_args(argv)
    if args.tenants < 1 or args.adopt < 0 or args.create < 0 or args.idle < 0:
        parser.error("--tenants must be at least 1; --adopt, --create and --idle must not be negative")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = harness.run_measured(lambda: run(args))
    title = (
        f"Worker process memory ({report['store']}): {args.tenants} existing tenants; adopting {args.adopt} "
        f"by marker and creating {args.create}, then one resync pass, then {args.idle:g} s idle"
    )
    harness.print_table(title, [p["phase"] for p in report["phases"]], table_rows(report["phases"]))
    print(f"  sandbox process peak RSS {report['sandbox_peak_rss_mib']:.0f} MiB")
    print(harness.machine_text(report["machine"]))
    harness.write_json(args.json, report)
    resync = report["phases"][1]
    print(f"  the resync pass found {resync['drifted']} drifted steps and {resync['duplicates']} duplicates")
    return 0 if resync["drifted"] == 0 and resync["duplicates"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
