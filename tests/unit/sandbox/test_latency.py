"""A sandbox's injected latency is the latency asked for, on average, though its event loop's timers end late."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tenantry.sandbox import latency
from tenantry.sandbox.faults import SandboxControls
from tenantry.sandbox.latency import Latency


class LateTimers:
    """A clock and a sleep that ends ``late`` seconds after it was asked to (as a real loop's timers do)."""

    def __init__(self, late: float) -> None:
        self.now = 1000.0
        self.late = late
        self.asked: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.asked.append(seconds)
        self.now += seconds + self.late


@pytest.fixture
def timers(monkeypatch: pytest.MonkeyPatch) -> LateTimers:
    fake = LateTimers(late=0.0008)
    monkeypatch.setattr(latency, "time", SimpleNamespace(monotonic=fake.monotonic))
    monkeypatch.setattr(latency, "asyncio", SimpleNamespace(sleep=fake.sleep))
    return fake


async def test_sleeps_that_end_late_are_shortened_until_the_delay_is_the_one_asked(timers: LateTimers) -> None:
    delay = Latency()
    took = [await delay.wait(0.020) for _ in range(200)]

    assert took[0] == pytest.approx(0.0208)  # the first sleep knows no better
    assert sum(took[-100:]) / 100 == pytest.approx(0.020, abs=0.00002)
    assert timers.asked[-1] == pytest.approx(0.0192, abs=0.00002)


async def test_a_loop_too_busy_to_keep_time_does_not_cut_the_delays_by_more_than_a_timer_tick(
    timers: LateTimers,
) -> None:
    timers.late = 0.010
    delay = Latency()
    for _ in range(200):
        await delay.wait(0.020)

    assert delay.lateness == Latency.MAX_CORRECTION
    assert min(timers.asked) == pytest.approx(0.020 - Latency.MAX_CORRECTION)


async def test_timers_on_time_get_the_delay_asked_and_a_delay_below_the_correction_sleeps_not_at_all(
    timers: LateTimers,
) -> None:
    timers.late = 0.0
    delay = Latency()
    for _ in range(10):
        await delay.wait(0.020)
    assert set(timers.asked) == {0.020}

    timers.late = 0.002
    for _ in range(100):
        await delay.wait(0.020)
    await delay.wait(0.001)
    assert timers.asked[-1] == 0.0


async def test_each_logged_request_carries_the_latency_it_was_given(timers: LateTimers) -> None:
    async def app(scope: dict, receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b""})  # type: ignore[operator]

    controls = SandboxControls(app, name="test")
    controls.set_latency(20)
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    for _ in range(3):
        await controls({"type": "http", "method": "GET", "path": "/x", "headers": []}, receive, send)

    delays = [entry.delayed_ms for entry in controls.requests()]
    assert delays[0] == pytest.approx(20.8)
    assert 20.0 < delays[2] < delays[1] < delays[0]
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [204, 204, 204]
