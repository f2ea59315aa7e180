"""bench/memory.py: a tiny run reports the worker's peak RSS, CPU and load in each phase."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.bench import run_bench


@pytest.mark.slow
def test_a_tiny_run_adopts_without_duplicates_and_reports_each_phase(tmp_path: Path) -> None:
    ran = run_bench("memory.py", tmp_path, "--tenants", "40", "--adopt", "3", "--create", "3", "--idle", "0.5")

    assert ran.code == 0, ran.output
    report = ran.report
    assert [p["phase"] for p in report["phases"]] == ["adopting", "resyncing", "idle"]
    adopting, resyncing, _idle = report["phases"]
    assert adopting["tenants"] == 6
    # The adopted tenants took the objects already there: the pass finds no twin and nothing to repair.
    assert resyncing["compared"] == 3 * 46
    assert resyncing["drifted"] == 0
    assert resyncing["duplicates"] == 0
    for phase in report["phases"]:
        assert phase["peak_rss_mib"] > 0
        assert phase["peak_rss_sampled_mib"] > 0
        assert phase["cpu_seconds"] >= 0
        assert phase["runqueue_seconds"] >= 0
        assert len(phase["load_average_start"]) == len(phase["load_average_end"]) == 3
    assert report["sandbox_peak_rss_mib"] > 0
