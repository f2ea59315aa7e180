"""Latency and fault injection, plus a request log, shared by every sandbox simulator.

Each simulator is wrapped in :class:`SandboxControls`, an ASGI middleware that

* records every request it sees (method, path, query, JSON body, answered status,
  monotonic arrival and answer times) in ``controls.log``;
* applies rules that match a request by method and path regex: added latency, a fixed status
  (optionally with ``Retry-After``), a hang (``timeout``) or a connection dropped mid-response;
* serves its own control API under ``/_sandbox/`` so a separate process (the demo, a benchmark, a test
  driving a worker subprocess) can set faults and read the log over HTTP:

  ``GET /_sandbox/requests``  the log; ``DELETE /_sandbox/requests`` clears it
  ``GET /_sandbox/faults``    rules in force; ``POST`` adds one (a :class:`FaultRule` as JSON);
  ``DELETE`` clears them
  ``POST /_sandbox/latency``  ``{"ms": 20}`` sets a latency added to every request

A dropped connection and a hang only behave like the network when the app is served by a real server
(uvicorn on loopback, see :mod:`tenantry.sandbox.server`); in-process ``httpx.ASGITransport`` sees the
raised error instead.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

FaultKind = Literal["status", "timeout", "drop", "latency"]
CONTROL_PREFIX = "/_sandbox/"


class DroppedConnectionError(ConnectionResetError):
    """Raised inside the app after a partial response so the server closes the connection."""


@dataclass
class FaultRule:
    """One injected behaviour. ``times`` counts how many matching requests it still applies to."""

    kind: FaultKind
    path: str = ".*"
    method: str = "*"
    status: int = 503
    body: Any = None
    retry_after: float | None = None
    latency_ms: float = 0.0
    hang_seconds: float = 30.0
    times: int | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.method != "*" and self.method.upper() != method.upper():
            return False
        return re.search(self.path, path) is not None


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: str
    body: Any
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # time.monotonic() when the request arrived and just before the last byte of the answer was sent, so
    # tests can tell whether two requests were in flight at once (None: no complete answer was sent).
    started: float = 0.0
    finished: float | None = None


class SandboxControls:
    """ASGI middleware holding the fault rules and the request log of one simulator."""

    def __init__(self, app: ASGIApp, *, name: str, fault_content_type: str = "application/json") -> None:
        self.app = app
        self.name = name
        self.fault_content_type = fault_content_type  # upstreams differ: Stalwart answers problem+json
        self.rules: list[FaultRule] = []
        self.latency_ms = 0.0
        self.log: list[LoggedRequest] = []
        self._lock = threading.Lock()

    # -- Python API -------------------------------------------------------------------------------
    def add_fault(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def fail(self, path: str, status: int = 503, *, method: str = "*", times: int | None = None,
             retry_after: float | None = None, body: Any = None) -> FaultRule:
        return self.add_fault(FaultRule(kind="status", path=path, method=method, status=status,
                                        times=times, retry_after=retry_after, body=body))

    def clear_faults(self) -> None:
        with self._lock:
            self.rules.clear()
            self.latency_ms = 0.0

    def requests(self, method: str | None = None, path: str | None = None) -> list[LoggedRequest]:
        """Logged requests, optionally filtered by method and a path regex."""
        with self._lock:
            items = list(self.log)
        return [
            r for r in items
            if (method is None or r.method == method.upper()) and (path is None or re.search(path, r.path))
        ]

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()

    # -- ASGI ---------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(CONTROL_PREFIX):
            await self._control(scope, receive, send)
            return
        method: str = scope["method"]
        body = await _read_body(receive)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        entry = LoggedRequest(method=method, path=path, query=scope.get("query_string", b"").decode(),
                              body=_maybe_json(body), headers=_redact(headers), started=time.monotonic())
        with self._lock:
            self.log.append(entry)
            rule = next((r for r in self.rules if r.matches(method, path)), None)
            if rule is not None and rule.times is not None:
                rule.times -= 1
            latency = self.latency_ms + sum(
                r.latency_ms for r in self.rules if r.kind == "latency" and r.matches(method, path)
            )
        if latency:
            await asyncio.sleep(latency / 1000)

        async def replay() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry.status = int(message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                entry.finished = time.monotonic()
            await send(message)

        if rule is None or rule.kind == "latency":
            await self.app(scope, replay, recording_send)
        elif rule.kind == "status":
            await _send_fault(rule, recording_send, self.fault_content_type)
        elif rule.kind == "timeout":
            await asyncio.sleep(rule.hang_seconds)
            await self.app(scope, replay, recording_send)
        else:  # drop: promise a body, send part of it, then break the connection
            await recording_send({"type": "http.response.start", "status": 200,
                                  "headers": [(b"content-type", b"application/json"),
                                              (b"content-length", b"64")]})
            await send({"type": "http.response.body", "body": b'{"partial":', "more_body": True})
            raise DroppedConnectionError(f"{self.name} sandbox dropped the connection (injected)")

    async def _control(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, sub = scope["method"], scope["path"][len(CONTROL_PREFIX):].strip("/")
        payload = _maybe_json(await _read_body(receive))
        status: int = 200
        out: Any = None
        if sub == "requests" and method == "GET":
            out = [asdict(r) for r in self.requests()]
        elif sub == "requests" and method == "DELETE":
            self.clear_log()
        elif sub == "faults" and method == "GET":
            out = [asdict(r) for r in self.rules]
        elif sub == "faults" and method == "POST" and isinstance(payload, dict):
            try:
                out = asdict(self.add_fault(FaultRule(**payload)))
            except TypeError as err:
                status, out = 400, {"detail": str(err)}
        elif sub == "faults" and method == "DELETE":
            self.clear_faults()
        elif sub == "latency" and method == "POST" and isinstance(payload, dict):
            self.latency_ms = float(payload.get("ms", 0))
            out = {"ms": self.latency_ms}
        else:
            status, out = 404, {"detail": f"unknown sandbox control {method} {sub}"}
        await _send_json(send, status, out)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _maybe_json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


def _redact(headers: dict[str, str]) -> dict[str, str]:
    return {k: ("<redacted>" if k in {"authorization", "cookie"} else v) for k, v in headers.items()}


async def _send_fault(rule: FaultRule, send: Send, content_type: str) -> None:
    headers = []
    if rule.retry_after is not None:
        headers.append((b"retry-after", str(int(rule.retry_after)).encode()))
    body = rule.body if rule.body is not None else {"detail": f"injected fault {rule.status}"}
    await _send_json(send, rule.status, body, headers, content_type=content_type)


async def _send_json(send: Send, status: int, payload: Any, extra_headers: list[tuple[bytes, bytes]] | None = None,
                     *, content_type: str = "application/json") -> None:
    data = b"" if payload is None else json.dumps(payload).encode()
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra_headers or [])})
    await send({"type": "http.response.body", "body": data})
