"""bench/provision.py: a tiny run prints every figure, consistent with each other; the floor arithmetic."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from bench.provision import UPSTREAMS, Figures, percentile

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "provision.py"
ROW = re.compile(r"^  (\S.*?)\s{2,}(\S.*)$")


def run_bench(*args: str) -> tuple[int, dict[str, str], str]:
    """Run the script; returns its exit code, its table as {label: value} and its whole output."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120, check=False
    )
    table: dict[str, str] = {}
    for line in done.stdout.split("\n\n", 2)[1].splitlines():
        match = ROW.match(line)
        assert match, f"not a table row: {line!r}\n{done.stdout}"
        table[match[1]] = match[2]
    return done.returncode, table, done.stdout + done.stderr


def number(value: str) -> float:
    match = re.match(r"[\d.]+", value)
    assert match, value
    return float(match[0])


@pytest.mark.slow
def test_a_run_of_five_tenants_prints_throughput_percentiles_round_trips_floor_ratio_and_rss() -> None:
    code, table, output = run_bench("--tenants", "5", "--latency-ms", "5", "--concurrency", "2")

    assert code == 0, output
    assert table["tenants active"] == "5/5"
    assert number(table["tenants/s"]) > 0
    p50, p90, p99 = (number(table[f"time-to-active p{p}"]) for p in (50, 90, 99))
    assert 0 < p50 <= p90 <= p99
    trips = {name: number(table[f"round trips/tenant {name}"]) for name in UPSTREAMS}
    # Every step of a new tenant has to reach its upstream, and each request waits the injected 5 ms.
    assert all(n >= 1 for n in trips.values()), trips
    assert number(table["round trips/tenant total"]) == pytest.approx(sum(trips.values()), abs=0.011)
    assert number(table["latency floor"]) == pytest.approx(max(trips.values()) * 5, abs=0.06)
    assert p50 >= number(table["latency floor"])
    assert number(table["mean time-to-active / floor"]) == pytest.approx(
        number(table["time-to-active mean"]) / number(table["latency floor"]), rel=0.01
    )
    assert number(table["peak RSS (this process)"]) > 0
    assert "latency floor = max(authentik" in output


@pytest.mark.slow
def test_the_given_database_holds_the_runs_tenants_active(database_url: str) -> None:
    code, table, output = run_bench("--tenants", "3", "--latency-ms", "0", "--database", database_url)

    assert code == 0, output
    assert table["tenants active"] == "3/3"
    assert table["mean time-to-active / floor"] == "n/a"  # no latency, no floor to compare with


def test_the_floor_is_the_longest_steps_round_trips_times_the_latency() -> None:
    figures = Figures(
        tenants=10,
        latency_ms=20,
        wall_seconds=2.0,
        cpu_seconds=1.0,
        times=[0.1] * 9 + [0.3],
        requests={"authentik": (30, 0), "stalwart": (42, 2), "ocis": (20, 0)},
        peak_rss_mib=100,
    )

    rows = dict(figures.rows())

    assert figures.floor_ms == pytest.approx(4.2 * 20)
    assert rows["latency floor"] == "84.0 ms"
    assert rows["mean time-to-active / floor"] == f"{120 / 84:.2f}"
    assert rows["round trips/tenant stalwart"] == "4.20 (2 answered with an error)"
    assert rows["tenants active"] == "10/10"
    assert rows["tenants/s"] == "5.0"


def test_percentiles_are_times_some_tenant_really_took() -> None:
    values = [float(v) for v in range(1, 101)]

    assert [percentile(values, p) for p in (50, 90, 99)] == [50.0, 90.0, 99.0]
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([7.0], 99) == 7.0
