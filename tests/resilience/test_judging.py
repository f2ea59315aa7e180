"""The judges of the resilience suites, on made-up input: runs read from worker logs, overlaps, the fault mix."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.resilience import FaultMix
from tests.support.workers import overlapping_runs, runs_in_log

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def event(name: str, seconds: float, tenant: str = "t1", run: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"event": name, "timestamp": at(seconds).isoformat(), "tenant_id": tenant}
    if run is not None:
        out["run_id"] = run
    return out


def test_a_run_ends_at_its_own_done_or_lease_lost_not_at_another_runs() -> None:
    log = [
        event("reconcile.start", 0, run="a"),
        event("reconcile.start", 0.5, tenant="t2", run="b"),
        event("reconcile.done", 1, tenant="t2", run="b"),
        event("reconcile.done", 2, run="a"),
        event("reconcile.start", 3, run="c"),
        event("reconcile.lease_lost", 4, run="c"),
        {"event": "worker.stop"},  # no timestamp: not a run event
    ]

    runs = runs_in_log(log, worker="w0", killed_at=None)

    assert [(r.run_id, r.start, r.end, r.ended_by) for r in runs] == [
        ("a", at(0), at(2), "reconcile.done"),
        ("b", at(0.5), at(1), "reconcile.done"),
        ("c", at(3), at(4), "reconcile.lease_lost"),
    ]


def test_a_run_open_in_a_killed_worker_ends_at_the_kill_and_one_in_a_live_worker_never() -> None:
    log = [event("reconcile.start", 0, run="a"), event("reconcile.start", 1, tenant="t2", run="b")]
    failed = [*log, event("worker.reconcile_failed", 2, tenant="t2")]

    killed = runs_in_log(log, worker="w0", killed_at=at(5))
    live = runs_in_log(failed, worker="w1", killed_at=None)

    assert [(r.end, r.ended_by) for r in killed] == [(at(5), "killed"), (at(5), "killed")]
    assert [(r.end, r.ended_by) for r in live] == [(None, None), (at(2), "worker.reconcile_failed")]


def test_a_later_run_overlaps_only_when_it_starts_before_the_earlier_one_ended() -> None:
    killed = runs_in_log([event("reconcile.start", 0, run="a")], worker="w0", killed_at=at(2))
    after_kill = runs_in_log(
        [event("reconcile.start", 5, run="b"), event("reconcile.done", 6, run="b")], worker="w1", killed_at=None
    )
    before_kill = runs_in_log(
        [event("reconcile.start", 1, run="c"), event("reconcile.done", 3, run="c")], worker="w2", killed_at=None
    )
    other_tenant = runs_in_log(
        [event("reconcile.start", 1, tenant="t2", run="d"), event("reconcile.done", 3, tenant="t2", run="d")],
        worker="w3",
        killed_at=None,
    )

    assert overlapping_runs([*killed, *after_kill, *other_tenant]) == []
    overlaps = overlapping_runs([*killed, *after_kill, *before_kill])
    assert [(o.earlier.run_id, o.later.run_id) for o in overlaps] == [("a", "c")]
    assert "run c in w2" in str(overlaps[0])


def test_a_run_that_never_ended_overlaps_every_later_run_of_its_tenant_but_a_lost_lease_does_not() -> None:
    stuck = runs_in_log([event("reconcile.start", 0, run="a")], worker="w0", killed_at=None)
    lost = runs_in_log(
        [event("reconcile.start", 0, run="b"), event("reconcile.lease_lost", 9, run="b")], worker="w1", killed_at=None
    )
    later = runs_in_log(
        [event("reconcile.start", 8, run="c"), event("reconcile.done", 10, run="c")], worker="w2", killed_at=None
    )

    assert [(o.earlier.run_id, o.later.run_id) for o in overlapping_runs([*stuck, *later])] == [("a", "c")]
    assert overlapping_runs([*lost, *later]) == []


@pytest.mark.parametrize("mix", [FaultMix(), FaultMix(server_errors=0.3, rate_limited=0.1, hangs=0.2, drops=0.2)])
def test_the_fault_rules_answer_each_kind_with_its_share_of_requests(mix: FaultMix) -> None:
    rules = mix.rules(hang_seconds=1, retry_after=1)

    # The first matching rule wins: a rule answers what its draw takes of what the rules before it let through.
    shares, through = [], 1.0
    for rule in rules:
        shares.append(through * rule.probability)
        through *= 1 - rule.probability

    assert [r.kind for r in rules] == ["status", "status", "status", "status", "timeout", "drop"]
    assert [r.status for r in rules[:4]] == [500, 502, 503, 429]
    assert rules[3].retry_after == 1
    assert math.isclose(sum(shares[:3]), mix.server_errors)
    assert [math.isclose(a, b) for a, b in zip(shares[3:], [mix.rate_limited, mix.hangs, mix.drops], strict=True)] == [
        True
    ] * 3
    assert math.isclose(1 - through, mix.total)
