"""Serving the API with uvicorn: one process or several on one socket, a clean exit 0 on SIGTERM or SIGINT.

uvicorn's own server re-raises the signal it stopped on once it has shut down, so a clean stop would end in
"killed by SIGTERM" (exit -15/143) and a supervisor could not tell it from a crash; this server exits as
any finished program does. When it starts shutting down it tells the app first (``tenantry.web.begin_draining``),
so open event streams end at once instead of holding the shutdown up; whatever is still running after
``GRACEFUL_SHUTDOWN_SECONDS`` is cancelled.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import socket
import threading
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import multiprocess

from tenantry.config import Settings
from tenantry.web import begin_draining

GRACEFUL_SHUTDOWN_SECONDS = 5  # requests still running by then are cancelled
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Server(uvicorn.Server):
    """uvicorn's server, telling the app when shutdown begins, and not re-raising the signal it stopped on."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        settle_heap()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        begin_draining()
        await super().shutdown(sockets=sockets)


def settle_heap() -> None:
    """Once the app has started: what starting made (modules, the app, its container) lives as long as the
    process, so it is set apart from the garbage collector's full passes, which would otherwise walk all of it
    each time (50-70 ms each: the API's slowest answers)."""
    gc.collect()
    gc.freeze()


class _Process(multiprocess.Process):
    """A worker process of the supervisor, running this module's server."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = Server(config=self.config)
        return self._server


def build_app() -> FastAPI:
    """The app of one of several API processes, from the environment (uvicorn calls it in each process)."""
    from tenantry.app import create_app
    from tenantry.logging import configure_logging

    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    return create_app(settings)


def _config(app: FastAPI | str, settings: Settings, host: str, port: int, processes: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        factory=isinstance(app, str),
        host=host,
        port=port,
        workers=processes,
        # uvloop and httptools where installed (Tenantry depends on them where they build), else asyncio and h11.
        loop="auto",
        http="auto",
        ws="none",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        log_level=settings.log_level.lower(),
        access_log=False,
        log_config=None,  # keep our logging configuration (JSON, redaction)
    )


def serve(settings: Settings, app: FastAPI, *, host: str, port: int, processes: int = 1) -> bool:
    """Serve until SIGTERM or SIGINT; returns whether the server (every process) started.

    With several processes each builds its own app from the environment, which must therefore hold the
    settings (``worker`` and the rest come from TENANTRY_* variables); ``app`` serves the single process.
    """
    if processes <= 1:
        server = Server(_config(app, settings, host, port, 1))
        server.run()
        return server.started
    os.environ["TENANTRY_RUN_WORKER_IN_API"] = "true" if settings.run_worker_in_api else "false"
    config = _config(f"{__name__}:build_app", settings, host, port, processes)
    sock = config.bind_socket()
    # The supervisor makes its processes by this module-level name; each then runs Server above.
    multiprocess.Process = _Process  # type: ignore[misc]
    try:
        supervisor = multiprocess.Multiprocess(config, sockets=[sock])
        supervisor.run()
    finally:
        sock.close()
    return all(p.exitcode == 0 for p in supervisor.processes)
