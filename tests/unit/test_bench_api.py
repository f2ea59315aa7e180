"""bench/api.py: a tiny authenticated run reports latency percentiles, achieved rate, CPU per request and load."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.bench import run_bench


@pytest.mark.slow
def test_a_tiny_run_of_both_endpoints_answers_200_with_a_token_and_reports_its_figures(tmp_path: Path) -> None:
    ran = run_bench("api.py", tmp_path, "--tenants", "30", "--rates", "20", "--duration", "1", "--warmup", "0.5")

    assert ran.code == 0, ran.output
    report = ran.report
    assert [r["endpoint"] for r in report["runs"]] == ["GET /tenants/{slug}", "GET /tenants?limit=100"]
    for run in report["runs"]:
        # Every request carried the issuer's token and was answered: a refused token would show as 401.
        assert set(run["statuses"]) == {"200"}, run
        assert run["errors"] == {}
        assert run["answered"] >= 15
        assert run["achieved_rate"] > 0
        latency = run["latency_ms"]
        assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
        assert run["product_cpu_ms_per_request"] > 0
        assert run["product_cpu_ms_per_answer"] >= run["product_cpu_ms_per_request"]
        assert run["product_runqueue_ms_per_request"] >= 0
        assert len(run["load_average_start"]) == len(run["load_average_end"]) == 3
    assert report["product_peak_rss_mib"] > 0
