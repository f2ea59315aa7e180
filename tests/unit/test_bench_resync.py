"""bench/resync.py: a tiny run over seeded healthy tenants reports each pass's time, requests, CPU and load."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "resync.py"


@pytest.mark.slow
def test_a_tiny_run_finds_every_seeded_tenant_in_sync_and_reports_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "resync.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--tenants", "40", "--passes", "2", "--settle", "0", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
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
    assert "time for the pass" in done.stdout
