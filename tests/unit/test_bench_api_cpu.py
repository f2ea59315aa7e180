"""bench/api_cpu.py: a tiny in-process run reports CPU and wall time per request and the answers' size for both
endpoints, with a token, and writes a profile of each when asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.bench import run_bench


@pytest.mark.slow
def test_a_tiny_run_measures_both_endpoints_with_a_token_and_profiles_them(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    ran = run_bench(
        "api_cpu.py", tmp_path, *("--tenants", "30", "--requests", "5", "--warmup", "2", "--profile", str(profiles))
    )

    assert ran.code == 0, ran.output
    report = ran.report
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
