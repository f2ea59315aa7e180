"""The three sandboxes served over real loopback HTTP from threads of the test process, restartable empty.

Served by uvicorn, a hang holds a real socket open past the client's timeout and a dropped connection is a
real reset, as on the network; the sandboxes' state and request logs stay inspectable from the test.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from tenantry.sandbox.faults import SandboxControls
from tenantry.sandbox.server import serve_in_thread
from tenantry.sandbox.suite import SandboxSuite

UPSTREAMS = ("authentik", "stalwart", "ocis")


class _Deferred:
    """An ASGI app whose target is set once its server listens: a sandbox must know its own public URL."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        assert self.app is not None, "sandbox not attached yet"
        await self.app(scope, receive, send)


class ServedSandboxes:
    """authentik, Stalwart and oCIS sandboxes, each on its own loopback port (see :func:`served_sandboxes`)."""

    def __init__(self, suite: SandboxSuite, servers: dict[str, contextlib.ExitStack]) -> None:
        self.suite = suite
        self._servers = servers

    def controls(self, upstream: str) -> SandboxControls:
        controls: SandboxControls = getattr(self.suite, upstream).controls
        return controls

    def all_controls(self) -> dict[str, SandboxControls]:
        return {name: self.controls(name) for name in UPSTREAMS}

    def stop(self, upstream: str) -> None:
        """Shut the upstream's server down: from now on its port refuses connections."""
        self._servers[upstream].close()

    def start_empty(self, upstream: str) -> None:
        """Serve a new sandbox of ``upstream``, holding nothing, on the port the stopped one listened on, with
        the same credentials: an upstream restarted after losing its state. ``suite`` then names the new one."""
        urls = self.suite.urls
        fresh = SandboxSuite(
            authentik_url=urls["authentik"],
            stalwart_url=urls["stalwart"],
            ocis_url=urls["ocis"],
            credentials=self.suite.credentials,
            dkim_delay=0.0,
            fast_dkim=True,
        )
        sandbox = getattr(fresh, upstream)
        port = int(urls[upstream].rsplit(":", 1)[1])
        stack = contextlib.ExitStack()
        stack.enter_context(serve_in_thread(sandbox.app, port=port))
        self._servers[upstream] = stack
        setattr(self.suite, upstream, sandbox)


@contextlib.contextmanager
def served_sandboxes() -> Iterator[ServedSandboxes]:
    """The three sandboxes served from threads of this process for the duration of the block."""
    holders = {name: _Deferred() for name in UPSTREAMS}
    servers = {name: contextlib.ExitStack() for name in UPSTREAMS}
    try:
        urls = {name: servers[name].enter_context(serve_in_thread(holders[name])) for name in UPSTREAMS}
        suite = SandboxSuite(
            authentik_url=urls["authentik"],
            stalwart_url=urls["stalwart"],
            ocis_url=urls["ocis"],
            dkim_delay=0.0,
            fast_dkim=True,
        )
        for name, app in suite.apps().items():
            holders[name].app = app
        yield ServedSandboxes(suite, servers)
    finally:
        for stack in servers.values():
            stack.close()
