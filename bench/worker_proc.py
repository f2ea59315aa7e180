"""``tenantry worker`` for a benchmark: the same worker loop, plus one bulk resync pass on SIGUSR1.

Settings come from ``TENANTRY_*`` as for ``tenantry worker``; the process builds its container and runs
``Container.worker()`` exactly as that command does. A benchmark sends SIGUSR1 to start a resync pass now
(``Worker.resync_once``, as the loop would after TENANTRY_RESYNC_INTERVAL_SECONDS) instead of waiting for the
interval, and reads two JSON lines on stdout: ``bench.worker.ready`` once the loop runs, and
``bench.resync.done`` after each pass, with its wall time and what it found.

    TENANTRY_...=... python bench/worker_proc.py
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from typing import Any


def _say(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


async def _main() -> None:
    from tenantry.config import Settings
    from tenantry.container import build_container
    from tenantry.logging import configure_logging

    settings = Settings(auth_enabled=False)
    configure_logging(settings.log_level, json=settings.log_json)
    container = build_container(settings)
    worker = container.worker()
    passes: set[asyncio.Task[None]] = set()

    async def resync() -> None:
        began = time.perf_counter()
        try:
            report = await worker.resync_once()
        except Exception as err:
            _say("bench.resync.failed", error=f"{type(err).__name__}: {err}")
            return
        seconds = time.perf_counter() - began
        if report is None:
            _say("bench.resync.done", seconds=round(seconds, 4), held_by_another=True)
            return
        _say(
            "bench.resync.done",
            seconds=round(seconds, 4),
            listed=report.listed,
            compared=report.compared,
            drifted=len(report.drifted),
            drift_examples=[list(d) for d in report.drifted[:5]],
            removed=len(report.removed),
            kept=len(report.kept),
            failed=report.failed,
        )

    def start_pass() -> None:
        task = asyncio.create_task(resync())
        passes.add(task)
        task.add_done_callback(passes.discard)

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, worker.stop)
    loop.add_signal_handler(signal.SIGUSR1, start_pass)
    running = asyncio.create_task(worker.run())
    _say("bench.worker.ready")
    try:
        await running
    finally:
        for task in list(passes):
            task.cancel()
        await container.aclose()


def main() -> int:
    asyncio.run(_main())  # the event loop `tenantry worker` runs on
    return 0


if __name__ == "__main__":
    sys.exit(main())
