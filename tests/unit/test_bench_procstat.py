"""bench/procstat.py: CPU, run-queue time and memory of a process tree, read from /proc."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from bench import procstat

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_cpu_burnt_by_a_child_is_counted_in_its_parents_tree() -> None:
    # The child burns 0.4 s of CPU and the test waits for 0.3 s of it: /proc counts in clock ticks, so a burn of
    # exactly the threshold can read as a tick short of it.
    burn = "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass\ntime.sleep(30)"
    parent = subprocess.Popen(
        [sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, '-c', {burn!r}])"]
    )
    try:
        deadline = time.monotonic() + 20
        while procstat.usage(parent.pid).cpu_seconds < 0.3 and time.monotonic() < deadline:
            time.sleep(0.05)
        tree = procstat.usage(parent.pid)
        alone = procstat.usage(parent.pid, with_children=False)
    finally:
        for pid in reversed(procstat.tree(parent.pid)):
            subprocess.run(["kill", str(pid)], check=False)
        parent.wait(timeout=10)

    assert tree.processes == 2
    assert tree.cpu_seconds >= 0.3 > alone.cpu_seconds
    assert tree.runqueue_seconds >= 0


def test_a_meter_reports_the_interval_and_the_load_at_both_ends() -> None:
    meter = procstat.Meter(procstat.os.getpid()).start()
    end = time.process_time() + 0.05
    while time.process_time() < end:
        pass

    figures = meter.stop()

    assert figures["cpu_seconds"] >= 0.04
    assert figures["wall_seconds"] >= 0.04
    assert len(figures["load_average_start"]) == len(figures["load_average_end"]) == 3


def test_the_peak_can_be_started_again_from_the_current_rss() -> None:
    pid = procstat.os.getpid()
    ballast = bytearray(64 * 1024 * 1024)
    ballast[::4096] = b"x" * len(ballast[::4096])
    del ballast
    before = procstat.peak_rss_mib(pid)

    if not procstat.reset_peak(pid):
        pytest.skip("this kernel refuses clear_refs")

    assert procstat.peak_rss_mib(pid) < before
    assert procstat.peak_rss_mib(pid) >= procstat.rss_mib(pid) - 1
