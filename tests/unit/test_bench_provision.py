"""bench/provision.py: a tiny run writes every figure, consistent with each other; the floor arithmetic."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.harness import percentile
from bench.provision import UPSTREAMS, Figures

from tests.support.bench import run_bench


@pytest.mark.slow
def test_a_tiny_run_among_existing_tenants_reports_cpu_floor_ratio_requests_and_load(tmp_path: Path) -> None:
    ran = run_bench(
        "provision.py", tmp_path, "--tenants", "4", "--latency-ms", "5", "--concurrency", "2", "--existing", "30"
    )

    assert ran.code == 0, ran.output
    (run,) = ran.report["runs"]
    assert (run["active"], run["tenants"], run["existing"], run["concurrency"]) == (4, 4, 30, 2)
    ttas = run["time_to_active_ms"]
    assert 0 < ttas["p50"] <= ttas["p90"] <= ttas["p99"]
    trips = run["requests_per_tenant"]
    # Every step of a new tenant has to reach its upstream, and each request waits the injected 5 ms.
    assert set(trips) == set(UPSTREAMS)
    assert all(n >= 1 for n in trips.values()), trips
    assert run["latency_floor_ms"] == pytest.approx(max(trips.values()) * 5, abs=0.05)
    assert run["mean_over_floor"] == pytest.approx(ttas["mean"] / run["latency_floor_ms"], rel=0.02)
    # What the sandboxes measured adding: the 5 ms asked, give or take a timer tick on a busy machine.
    assert 4.0 <= run["injected_latency_ms"] <= 7.0
    assert run["product_cpu_ms_per_tenant"] > 0
    assert run["product_runqueue_ms_per_tenant"] >= 0
    assert run["product"]["cpu_seconds"] > 0
    assert len(run["load_average_start"]) == len(run["load_average_end"]) == 3
    assert run["product_peak_rss_mib"] > 0
    assert run["sandbox_peak_rss_mib"] > 0
    assert run["create_answers"] == {"201": 4}
    # Seen by the client, a tenant is active no sooner than the store says it became so after its creation.
    assert run["client_time_to_active_ms"]["mean"] >= ttas["mean"] * 0.9
    assert "product CPU/tenant" in ran.output
    assert "mean time-to-active / floor" in ran.output
    # The machine's single-core speed is measured and printed, so that runs on two machines can be compared.
    assert ran.report["machine"]["reference_seconds"] > 0
    assert ran.report["machine"]["reference_seconds_before"] > 0
    assert "seconds per 10^7 additions" in ran.output
    assert "before the run" in ran.output


@pytest.mark.slow
@pytest.mark.postgres
def test_a_run_on_postgresql_gets_a_database_of_its_own(tmp_path: Path, postgres_url: str) -> None:
    ran = run_bench("provision.py", tmp_path, "--tenants", "3", "--latency-ms", "0", "--database", postgres_url)

    assert ran.code == 0, ran.output
    assert ran.report["store"] == "PostgreSQL"
    (run,) = ran.report["runs"]
    assert run["active"] == 3
    assert run["mean_over_floor"] is None  # no latency, no floor to compare with
    assert run["injected_latency_ms"] is None


@pytest.mark.slow
@pytest.mark.postgres
def test_several_api_processes_and_a_worker_process_are_all_measured(tmp_path: Path, postgres_url: str) -> None:
    ran = run_bench(
        "provision.py", tmp_path, "--tenants", "4", "--latency-ms", "0", "--processes", "2", "--database", postgres_url
    )

    assert ran.code == 0, ran.output
    assert ran.report["api_processes"] == 2
    (run,) = ran.report["runs"]
    assert run["active"] == 4
    # The serve supervisor, its two API processes and the worker process (plus any helper multiprocessing adds).
    assert run["product"]["processes"] >= 4


def test_the_floor_is_the_longest_steps_round_trips_times_the_latency() -> None:
    figures = Figures(
        tenants=10,
        concurrency=2,
        existing=0,
        latency_ms=20,
        wall_seconds=2.0,
        times=[0.1] * 9 + [0.3],
        requests={
            "authentik": {"requests": 30, "errors": 0},
            "stalwart": {"requests": 42, "errors": 2},
            "ocis": {"requests": 20, "errors": 0},
        },
        product={"cpu_seconds": 1.0, "runqueue_seconds": 0.5},
    )

    summary = figures.summary()

    assert figures.floor_ms == pytest.approx(4.2 * 20)
    assert summary["latency_floor_ms"] == 84.0
    assert summary["mean_over_floor"] == round(120 / 84, 2)
    assert summary["requests_per_tenant"]["stalwart"] == 4.2
    assert summary["product_cpu_ms_per_tenant"] == 100.0
    assert summary["product_runqueue_ms_per_tenant"] == 50.0
    assert summary["tenants_per_second"] == 5.0


def test_percentiles_are_times_some_tenant_really_took() -> None:
    values = [float(v) for v in range(1, 101)]

    assert [percentile(values, p) for p in (50, 90, 99)] == [50.0, 90.0, 99.0]
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([7.0], 99) == 7.0
