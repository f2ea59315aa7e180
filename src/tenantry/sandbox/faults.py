"""Latency and fault injection, plus a request log, shared by every sandbox simulator.

Each simulator is wrapped in :class:`SandboxControls`, an ASGI middleware that

* records every request it sees (method, path, query, JSON or form body, answered status,
  monotonic arrival and answer times, the kind of injected fault that answered it, the latency it was given)
  in ``controls.log``,
  with credentials redacted from headers and bodies so a log dumped by a test or the demo never shows a
  secret;
* applies rules that match a request by method and path regex: added latency, a fixed status
  (optionally with ``Retry-After``), a hang (``timeout``), a connection dropped mid-response or a
  ``crash`` (the upstream failed unhandled; answered the way that upstream answers its own crashes, which
  each simulator supplies as ``crash_response``; nothing the request asked for is applied). Every
  matching ``latency`` rule adds its delay; of the other kinds the first matching rule wins. Each rule
  that applies counts its ``times`` down;
* serves its own control API under ``/_sandbox/`` so a separate process (the demo, a benchmark, a test
  driving a worker subprocess) can set faults and read the log over HTTP:

  ``GET /_sandbox/requests``  the log; ``DELETE /_sandbox/requests`` clears it
  ``GET /_sandbox/faults``    rules in force; ``POST`` adds one (a :class:`FaultRule` as JSON, 400 if
  invalid); ``DELETE`` clears them
  ``POST /_sandbox/latency``  ``{"ms": 20}`` sets a latency added to every request (400 if invalid)

A dropped connection and a hang only behave like the network when the app is served by a real server
(uvicorn on loopback, see :mod:`tenantry.sandbox.server`); in-process ``httpx.ASGITransport`` sees the
raised error instead.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

from .latency import Latency

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

FaultKind = Literal["status", "timeout", "drop", "latency", "crash"]
FAULT_KINDS: frozenset[str] = frozenset({"status", "timeout", "drop", "latency", "crash"})
CONTROL_PREFIX = "/_sandbox/"
REDACTED = "<redacted>"
# Body keys whose values never reach the log; compared case-insensitively, ignoring "_" and "-", so
# ``clientSecret`` and ``client_secret`` are both caught.
SECRET_KEYS: frozenset[str] = frozenset(
    {
        "client_secret",
        "password",
        "secret",
        "refresh_token",
        "access_token",
        "code",
        "code_verifier",
        "device_code",
        "token",
    }
)
_SECRET_KEYS = frozenset(re.sub(r"[-_]", "", k) for k in SECRET_KEYS)
_SECRET_HEADERS = frozenset({"authorization", "cookie"})
_METHOD = re.compile(r"^(\*|[A-Za-z]+)$")


# What a simulator answers when its upstream fails unhandled: status, headers and body for a request method.
CrashResponse = Callable[[str], tuple[int, list[tuple[bytes, bytes]], bytes]]


def plain_crash(method: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The default crash answer: a bare 500, as an ASGI server sends for an unhandled exception."""
    body = b"Internal Server Error"
    return 500, [(b"content-type", b"text/plain; charset=utf-8")], body


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
    probability: float = 1.0

    def validate(self) -> None:
        """Raise ValueError unless the rule can be applied (a bad rule must not break later requests)."""
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {sorted(FAULT_KINDS)}")
        problem = _regex_problem(self.path)
        if problem is not None:
            raise ValueError(f"invalid path regex {self.path!r}: {problem}")
        if not isinstance(self.method, str) or not _METHOD.match(self.method):
            raise ValueError(f"invalid method {self.method!r}; expected an HTTP method or '*'")
        if isinstance(self.status, bool) or not isinstance(self.status, int) or not 100 <= self.status <= 599:
            raise ValueError(f"invalid status {self.status!r}; expected an integer from 100 to 599")
        if self.times is not None and (
            isinstance(self.times, bool) or not isinstance(self.times, int) or self.times < 0
        ):
            raise ValueError(f"invalid times {self.times!r}; expected a non-negative integer or null")
        _non_negative("latency_ms", self.latency_ms)
        _non_negative("hang_seconds", self.hang_seconds)
        _non_negative("probability", self.probability)
        if self.probability > 1:
            raise ValueError(f"invalid probability {self.probability!r}; expected a number from 0 to 1")
        if self.retry_after is not None:
            _non_negative("retry_after", self.retry_after)

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
    fault: FaultKind | None = None  # the kind of the injected rule that answered it, if one did (not latency)
    delayed_ms: float = 0.0  # the latency injected into it, as measured (see Latency)


class SandboxControls:
    """ASGI middleware holding the fault rules and the request log of one simulator."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        name: str,
        fault_content_type: str = "application/json",
        crash_response: CrashResponse = plain_crash,
    ) -> None:
        self.app = app
        self.name = name
        self.fault_content_type = fault_content_type  # upstreams differ: Stalwart answers problem+json
        self.crash_response = crash_response  # upstreams differ: authentik's crash page answers writes 405
        self.rules: list[FaultRule] = []
        self.latency_ms = 0.0
        self.latency = Latency()
        self.log: list[LoggedRequest] = []
        # Draws for rules with a probability below 1: fault injection, not security, and seedable for a rerun.
        self.rng = random.Random()  # noqa: S311
        self._lock = threading.Lock()

    # -- Python API -------------------------------------------------------------------------------
    def add_fault(self, rule: FaultRule) -> FaultRule:
        """Put ``rule`` in force after the existing ones; ValueError if it is invalid."""
        rule.validate()
        with self._lock:
            self.rules.append(rule)
        return rule

    def fail(
        self,
        path: str,
        status: int = 503,
        *,
        method: str = "*",
        times: int | None = None,
        retry_after: float | None = None,
        body: Any = None,
    ) -> FaultRule:
        return self.add_fault(
            FaultRule(
                kind="status", path=path, method=method, status=status, times=times, retry_after=retry_after, body=body
            )
        )

    def crash(self, path: str, *, method: str = "*", times: int | None = None) -> FaultRule:
        """Make matching requests fail as the upstream's unhandled errors do, without applying them."""
        return self.add_fault(FaultRule(kind="crash", path=path, method=method, times=times))

    def set_latency(self, ms: float) -> None:
        """Add ``ms`` milliseconds to every request (0 turns it off); ValueError if negative or not a number."""
        _non_negative("ms", ms)
        with self._lock:
            self.latency_ms = float(ms)

    def faults(self) -> list[FaultRule]:
        with self._lock:
            return list(self.rules)

    def clear_faults(self) -> None:
        with self._lock:
            self.rules.clear()
            self.latency_ms = 0.0

    def requests(self, method: str | None = None, path: str | None = None) -> list[LoggedRequest]:
        """Logged requests, optionally filtered by method and a path regex."""
        with self._lock:
            items = list(self.log)
        return [
            r
            for r in items
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
        entry = LoggedRequest(
            method=method,
            path=path,
            query=_redact_query(scope.get("query_string", b"").decode()),
            body=_logged_body(body, headers.get("content-type", "")),
            headers=_redact_headers(headers),
            started=time.monotonic(),
        )
        with self._lock:
            self.log.append(entry)
            matching = [
                r
                for r in self.rules
                if r.matches(method, path) and (r.probability >= 1 or self.rng.random() < r.probability)
            ]
            delays = [r for r in matching if r.kind == "latency"]
            rule = next((r for r in matching if r.kind != "latency"), None)
            for applied in [*delays, *([] if rule is None else [rule])]:
                if applied.times is not None:
                    applied.times -= 1
            latency = self.latency_ms + sum(r.latency_ms for r in delays)
            entry.fault = None if rule is None else rule.kind
        if latency:
            entry.delayed_ms = round(1000 * await self.latency.wait(latency / 1000), 3)

        async def replay() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry.status = int(message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                entry.finished = time.monotonic()
            await send(message)

        if rule is None:
            await self.app(scope, replay, recording_send)
        elif rule.kind == "status":
            await _send_fault(rule, recording_send, self.fault_content_type)
        elif rule.kind == "timeout":
            await asyncio.sleep(rule.hang_seconds)
            await self.app(scope, replay, recording_send)
        elif rule.kind == "crash":
            status, crash_headers, data = self.crash_response(method)
            length = (b"content-length", str(len(data)).encode())
            await recording_send({"type": "http.response.start", "status": status, "headers": [*crash_headers, length]})
            await recording_send({"type": "http.response.body", "body": data})
        else:  # drop: promise a body, send part of it, then break the connection
            await recording_send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
                }
            )
            await send({"type": "http.response.body", "body": b'{"partial":', "more_body": True})
            raise DroppedConnectionError(f"{self.name} sandbox dropped the connection (injected)")

    async def _control(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, sub = scope["method"], scope["path"][len(CONTROL_PREFIX) :].strip("/")
        payload = _maybe_json(await _read_body(receive))
        status: int = 200
        out: Any = None
        if sub == "requests" and method == "GET":
            out = [asdict(r) for r in self.requests()]
        elif sub == "requests" and method == "DELETE":
            self.clear_log()
        elif sub == "faults" and method == "GET":
            out = [asdict(r) for r in self.faults()]
        elif sub == "faults" and method == "POST":
            try:
                out = asdict(self.add_fault(FaultRule(**_json_object(payload, "a fault rule"))))
            except (TypeError, ValueError) as err:  # TypeError: unknown or missing FaultRule fields
                status, out = 400, {"detail": str(err)}
        elif sub == "faults" and method == "DELETE":
            self.clear_faults()
        elif sub == "latency" and method == "POST":
            try:
                self.set_latency(_json_object(payload, 'latency ({"ms": 20})').get("ms", 0))
                out = {"ms": self.latency_ms}
            except ValueError as err:
                status, out = 400, {"detail": str(err)}
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


def _regex_problem(pattern: Any) -> str | None:
    if not isinstance(pattern, str):
        return "not a string"
    try:
        re.compile(pattern)
    except re.error as err:
        return str(err)
    return None


def _json_object(payload: Any, what: str) -> dict[str, Any]:
    if isinstance(payload, dict):
        return payload
    raise ValueError(f"{what} must be a JSON object")


def _non_negative(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"invalid {name} {value!r}; expected a non-negative number")


def _logged_body(body: bytes, content_type: str) -> Any:
    """The body as the log keeps it: JSON or a form parsed into a dict, with secret values redacted."""
    if body and content_type.split(";", maxsplit=1)[0].strip().lower() == "application/x-www-form-urlencoded":
        form: dict[str, Any] = {}
        for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
            previous = form.get(key)
            if previous is None:
                form[key] = value
            elif isinstance(previous, list):
                previous.append(value)
            else:
                form[key] = [previous, value]
        return _redact_secrets(form)
    return _redact_secrets(_maybe_json(body))


def _redact_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (REDACTED if _is_secret_key(k) else _redact_secrets(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_secrets(v) for v in value]
    return value


def _is_secret_key(key: Any) -> bool:
    return isinstance(key, str) and re.sub(r"[-_]", "", key.lower()) in _SECRET_KEYS


def _redact_query(query: str) -> str:
    """The query string with the values of secret-looking parameters replaced (``?code=`` and the like)."""
    if not query:
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(_is_secret_key(key) for key, _ in pairs):
        return query
    return urlencode([(k, REDACTED if _is_secret_key(k) else v) for k, v in pairs])


def _redact_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: (REDACTED if k in _SECRET_HEADERS else v) for k, v in headers.items()}


async def _send_fault(rule: FaultRule, send: Send, content_type: str) -> None:
    headers = []
    if rule.retry_after is not None:
        headers.append((b"retry-after", str(int(rule.retry_after)).encode()))
    body = rule.body if rule.body is not None else {"detail": f"injected fault {rule.status}"}
    await _send_json(send, rule.status, body, headers, content_type=content_type)


async def _send_json(
    send: Send,
    status: int,
    payload: Any,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
    *,
    content_type: str = "application/json",
) -> None:
    data = b"" if payload is None else json.dumps(payload).encode()
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra_headers or [])})
    await send({"type": "http.response.body", "body": data})
