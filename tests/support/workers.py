"""`tenantry worker` processes for tests, and the reconcile runs their JSON logs record.

Each process logs to a file of its own. A run is the interval from its ``reconcile.start`` to the event that
ends it (``reconcile.done``, ``reconcile.lease_lost``, the worker giving up on it, or the process being killed:
a process killed with SIGKILL stops calling upstreams at once, so its open runs end at the kill).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TENANTRY = Path(sys.executable).with_name("tenantry")
# Events that end a run of a tenant in a process: the reconciler's own (by run id), and the worker's when the
# reconcile raised or was abandoned at shutdown (by tenant id).
RUN_ENDS = ("reconcile.done", "reconcile.lease_lost")
WORKER_ENDS = ("worker.reconcile_failed", "worker.run_abandoned")


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log_path: Path
    killed_at: datetime | None = None

    def events(self) -> list[dict[str, Any]]:
        events = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
        return [e for e in events if isinstance(e, dict)]

    def started(self) -> bool:
        return any(e.get("event") == "worker.start" for e in self.events())

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, and note when the process was gone (taken after it was reaped, so no later)."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.killed_at = datetime.now(UTC)

    def runs(self) -> list[Run]:
        return runs_in_log(self.events(), worker=self.log_path.stem, killed_at=self.killed_at)

    def reconciled(self) -> set[str]:
        """The tenants (ids) of which this worker finished a reconcile."""
        return {e["tenant_id"] for e in self.events() if e.get("event") == "reconcile.done"}


def start_worker(settings: Mapping[str, Any], log_path: Path) -> WorkerProcess:
    """Start ``tenantry worker`` with ``settings`` (Settings field names) as its only TENANTRY_* environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")}
    env.update({f"TENANTRY_{key.upper()}": str(value) for key, value in settings.items()})
    with log_path.open("wb") as log:
        process = subprocess.Popen([str(TENANTRY), "worker"], env=env, stdout=log, stderr=subprocess.STDOUT)
    return WorkerProcess(process, log_path)


@dataclass(frozen=True)
class Run:
    """One reconcile of one tenant in one process; ``end`` is None while it has not ended."""

    tenant_id: str
    run_id: str
    worker: str
    start: datetime
    end: datetime | None
    ended_by: str | None


def _at(event: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(str(event["timestamp"]))


def runs_in_log(events: list[dict[str, Any]], *, worker: str, killed_at: datetime | None) -> list[Run]:
    """The runs one worker's log records, each with how it ended ("killed" for one the kill cut short)."""
    events = [e for e in events if "timestamp" in e]
    runs: list[Run] = []
    for index, event in enumerate(events):
        if event.get("event") != "reconcile.start":
            continue
        tenant_id, run_id = event["tenant_id"], event["run_id"]
        end: datetime | None = None
        ended_by: str | None = None
        for later in events[index + 1 :]:
            name = later.get("event")
            if (name in RUN_ENDS and later.get("run_id") == run_id) or (
                name in WORKER_ENDS and later.get("tenant_id") == tenant_id
            ):
                end, ended_by = _at(later), str(name)
                break
        if end is None and killed_at is not None:
            end, ended_by = killed_at, "killed"
        runs.append(Run(tenant_id, run_id, worker, _at(event), end, ended_by))
    return runs


@dataclass(frozen=True)
class Overlap:
    earlier: Run
    later: Run

    def __str__(self) -> str:
        a, b = self.earlier, self.later
        ended = "never" if a.end is None else f"at {a.end.isoformat()} ({a.ended_by})"
        return (
            f"tenant {a.tenant_id}: run {b.run_id} in {b.worker} started at {b.start.isoformat()} while run "
            f"{a.run_id} in {a.worker} (started {a.start.isoformat()}) was still on, ending {ended}"
        )


def overlapping_runs(runs: list[Run]) -> list[Overlap]:
    """Pairs of runs of one tenant where the later began before the earlier ended.

    Runs the lease let go of (``reconcile.lease_lost``) are not counted against the later run: a lease that
    expired unrenewed is the one case where the design lets another worker in before the first noticed.
    """
    by_tenant: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        by_tenant[run.tenant_id].append(run)
    overlaps: list[Overlap] = []
    for items in by_tenant.values():
        items.sort(key=lambda r: r.start)
        for i, earlier in enumerate(items):
            if earlier.ended_by == "reconcile.lease_lost":
                continue
            for later in items[i + 1 :]:
                if earlier.end is None or later.start < earlier.end:
                    overlaps.append(Overlap(earlier, later))
    return overlaps
