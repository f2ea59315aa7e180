"""Serving ASGI apps on loopback: in a background thread (tests, benchmarks) or in the running loop (demo)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn


def _config(app: Any, host: str, port: int, tls: tuple[str, str] | None = None) -> uvicorn.Config:
    # log_config=None: the process's own logging configuration (JSON, redaction) applies to uvicorn too.
    certfile, keyfile = tls if tls else (None, None)
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        log_config=None,
        lifespan="auto",
        timeout_graceful_shutdown=1,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
    )


@dataclass
class RunningServer:
    server: uvicorn.Server
    url: str


def bound_port(server: uvicorn.Server) -> int:
    """The port a started server listens on (useful when it was asked for port 0)."""
    for srv in server.servers:
        for sock in srv.sockets:
            return int(sock.getsockname()[1])
    raise RuntimeError("server has no listening socket")


async def start_in_loop(app: Any, host: str = "127.0.0.1", port: int = 0) -> tuple[RunningServer, asyncio.Task[None]]:
    """Start ``app`` in the running event loop; returns once it is listening."""
    server = uvicorn.Server(_config(app, host, port))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError(f"server on {host}:{port} stopped during start-up")
        await asyncio.sleep(0.01)
    return RunningServer(server, f"http://{host}:{bound_port(server)}"), task


@contextlib.contextmanager
def serve_in_thread(
    app: Any, host: str = "127.0.0.1", port: int = 0, tls: tuple[str, str] | None = None
) -> Iterator[str]:
    """Serve ``app`` from a daemon thread for the duration of the block; yields its base URL.

    ``tls`` is ``(certfile, keyfile)`` to serve HTTPS (tests of private-CA trust).
    """
    server = uvicorn.Server(_config(app, host, port, tls))
    thread = threading.Thread(target=server.run, name=f"asgi-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"server on {host}:{port} did not start")
        time.sleep(0.01)
    try:
        yield f"{'https' if tls else 'http'}://{host}:{bound_port(server)}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
