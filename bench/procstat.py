"""What a process (and its children) cost, read from /proc: CPU, time waiting for a CPU, memory; and the load.

``utime + stime`` of ``/proc/<pid>/stat`` count every thread of the process, those that have ended included.
The run-queue time is field 2 of ``/proc/<pid>/task/<tid>/schedstat`` (nanoseconds a thread was runnable but
not running), summed over the threads alive when read: a thread that ends takes its share with it, so the
figure is a lower bound when threads come and go (aiosqlite's connection threads are pooled and stay).
Peak RSS of a phase is ``VmHWM`` after writing ``5`` to ``/proc/<pid>/clear_refs`` at the phase's start
(which resets it, Linux ≥ 4.0), and is also sampled as ``VmRSS`` by :class:`RssSampler`.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Usage:
    """Cumulative figures of a process tree at one moment (or, from :meth:`minus`, over an interval)."""

    cpu_seconds: float  # user + system, every thread
    runqueue_seconds: float  # runnable but waiting for a CPU, summed over threads
    processes: int = 1

    def minus(self, before: Usage) -> Usage:
        return Usage(
            self.cpu_seconds - before.cpu_seconds, self.runqueue_seconds - before.runqueue_seconds, self.processes
        )

    def as_dict(self) -> dict[str, Any]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def _stat_cpu(pid: int) -> float:
    # The command name (field 2) may hold spaces and parentheses: split after its closing parenthesis.
    text = (PROC / str(pid) / "stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of the whole line
    return (utime + stime) / TICKS


def _runqueue(pid: int) -> float:
    total = 0
    for task in (PROC / str(pid) / "task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):  # the thread ended meanwhile
            continue
    return total / 1e9


def children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (``/proc/<pid>/task/*/children``), depth first."""
    found: list[int] = []
    try:
        tasks = list((PROC / str(pid) / "task").iterdir())
    except FileNotFoundError:
        return found
    for task in tasks:
        try:
            kids = [int(p) for p in (task / "children").read_text().split()]
        except (FileNotFoundError, ValueError):
            continue
        for kid in kids:
            found += [kid, *children(kid)]
    return found


def tree(pid: int) -> list[int]:
    return [pid, *children(pid)]


def usage(pid: int, *, with_children: bool = True) -> Usage:
    """CPU and run-queue seconds of ``pid`` (and, by default, of its descendants alive now)."""
    cpu = queued = 0.0
    pids = tree(pid) if with_children else [pid]
    counted = 0
    for one in pids:
        try:
            cpu += _stat_cpu(one)
            queued += _runqueue(one)
            counted += 1
        except (FileNotFoundError, ProcessLookupError):
            continue
    return Usage(cpu, queued, counted)


def _status(pid: int) -> dict[str, int]:
    values: dict[str, int] = {}
    for line in (PROC / str(pid) / "status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            values[key] = int(rest.split()[0])  # KiB
    return values


def rss_mib(pid: int) -> float:
    return _status(pid).get("VmRSS", 0) / 1024


def peak_rss_mib(pid: int) -> float:
    """``VmHWM``: the most resident memory since the process started, or since :func:`reset_peak`."""
    return _status(pid).get("VmHWM", 0) / 1024


def reset_peak(pid: int) -> bool:
    """Start ``VmHWM`` again from the current RSS; False where the kernel or permissions do not allow it."""
    try:
        (PROC / str(pid) / "clear_refs").write_text("5")
    except OSError:
        return False
    return True


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class RssSampler:
    """Samples a process's RSS every ``interval`` seconds in a thread; :meth:`phase` returns the largest seen
    since the last call (a check on ``VmHWM``, and the only peak where ``clear_refs`` is refused)."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self._pid = pid
        self._interval = interval
        self._peak = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-{pid}", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                now = rss_mib(self._pid)
            except (FileNotFoundError, ProcessLookupError):
                return
            with self._lock:
                self._peak = max(self._peak, now)
            time.sleep(self._interval)

    def phase(self) -> float:
        """The largest RSS sampled since the previous call (MiB); starts the next phase from the current RSS."""
        with self._lock:
            peak, self._peak = self._peak, 0.0
        try:
            current = rss_mib(self._pid)
        except (FileNotFoundError, ProcessLookupError):
            return peak
        with self._lock:
            self._peak = max(self._peak, current)
        return max(peak, current)


@dataclass
class Meter:
    """A process tree's usage between :meth:`start` and :meth:`stop`, and the load average at both ends."""

    pid: int
    started: Usage | None = None
    wall_started: float = 0.0
    load_start: list[float] | None = None

    def start(self) -> Meter:
        self.load_start = load_average()
        self.started = usage(self.pid)
        self.wall_started = time.perf_counter()
        return self

    def stop(self) -> dict[str, Any]:
        assert self.started is not None, "start() first"
        spent = usage(self.pid).minus(self.started)
        wall = time.perf_counter() - self.wall_started
        return {
            "wall_seconds": round(wall, 3),
            "cpu_seconds": round(spent.cpu_seconds, 3),
            "runqueue_seconds": round(spent.runqueue_seconds, 3),
            "processes": spent.processes,
            "load_average_start": self.load_start,
            "load_average_end": load_average(),
        }
