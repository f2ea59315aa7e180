"""bench/http_client.py: a tiny run sends its requests through both transports, in turns, and reports each one's
CPU per request and their ratio."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.bench import run_bench


@pytest.mark.slow
def test_a_tiny_run_measures_both_transports_in_turns(tmp_path: Path) -> None:
    ran = run_bench("http_client.py", tmp_path, *("--requests", "20", "--rounds", "2", "--in-flight", "3"))

    assert ran.code == 0, ran.output
    report = ran.report
    assert report["requests_per_block"] == 20
    assert sorted(report["cpu_ms_per_request"]) == ["aiohttp", "httpx"]
    for figures in report["cpu_ms_per_request"].values():
        assert len(figures) == 2
        assert all(f > 0 for f in figures)
    medians = report["median_cpu_ms_per_request"]
    assert report["httpx_over_aiohttp"] == pytest.approx(medians["httpx"] / medians["aiohttp"], rel=0.02)
    assert "httpx's own transport / aiohttp's" in ran.output
