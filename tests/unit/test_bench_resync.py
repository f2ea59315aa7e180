"""bench/resync.py: a tiny run over seeded healthy tenants reports each pass's time, requests, CPU and load."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.bench import run_bench


@pytest.mark.slow
def test_a_tiny_run_finds_every_seeded_tenant_in_sync_and_reports_its_figures(tmp_path: Path) -> None:
    ran = run_bench("resync.py", tmp_path, "--tenants", "40", "--passes", "2", "--settle", "0")

    assert ran.code == 0, ran.output
    report = ran.report
    assert report["tenants"] == 40
    assert len(report["passes"]) == 2
    for one in report["passes"]:
        # The seeded objects are exactly what provisioning would have made: nothing drifted, nothing failed.
        assert one["compared"] == 3 * 40
        assert one["drifted"] == 0
        assert one["failed"] == {}
        assert one["seconds"] > 0
        assert set(one["requests_per_tenant"]) == {"authentik", "stalwart", "ocis"}
        assert all(n["requests"] >= 1 for n in one["requests"].values())
        assert one["worker_cpu_seconds"] >= 0
        assert one["worker_runqueue_seconds"] >= 0
        assert one["worker_peak_rss_mib"] > 0
        assert len(one["load_average_start"]) == len(one["load_average_end"]) == 3
    assert "time for the pass" in ran.stdout
