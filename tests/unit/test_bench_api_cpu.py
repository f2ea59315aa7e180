"""bench/api_cpu.py: a tiny in-process run reports CPU and wall time per request and the answers' size for both
endpoints, with a token, and writes a profile of each when asked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "api_cpu.py"


@pytest.mark.slow
def test_a_tiny_run_measures_both_endpoints_with_a_token_and_profiles_them(tmp_path: Path) -> None:
    out, profiles = tmp_path / "api_cpu.json", tmp_path / "profiles"
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            *("--tenants", "30", "--requests", "5", "--warmup", "2"),
            *("--profile", str(profiles), "--json", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert report["tenants"] == 30
    assert [r["endpoint"] for r in report["runs"]] == ["GET /tenants/{slug}", "GET /tenants?limit=100"]
    for run in report["runs"]:
        assert run["requests"] == 5
        assert run["cpu_ms_per_request"] > 0
        assert run["wall_ms_per_request"] > 0
        assert run["profiled"] is True
    one, listed = report["runs"]
    assert listed["bytes_per_answer"] > 30 * one["bytes_per_answer"] * 0.9  # the page holds all 30 tenants
    assert sorted(p.name for p in profiles.iterdir()) == ["list.prof", "one.prof"]
    assert len(report["load_average_start"]) == len(report["load_average_end"]) == 3
