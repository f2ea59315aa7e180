"""The sandbox Stalwart: an in-memory JMAP management server (Stalwart >= 0.16, ``urn:stalwart:jmap``).

It serves ``GET /.well-known/jmap`` (307 to the session), ``GET /jmap/session`` and ``POST /jmap/`` with
``x:Domain/get|set|query``, ``x:Account/get|set|query`` and ``x:DkimSignature/get|set|query``, including
result and creation references, upstream's SetErrors and request-level ``application/problem+json`` errors.
Automatic DKIM keys appear ``dkim_delay`` seconds after a domain is created, judged against ``clock`` on
each request, so no background task is involved and any server (or none, in-process) will do.

Faults: the app is wrapped in :class:`SandboxControls` (``sandbox.controls``); every error it injects
is labelled ``application/problem+json`` like upstream's own request-level errors, and a Stalwart-shaped
body is obtained by passing one, e.g.::

    sandbox.controls.fail(r"^/jmap/?$", 429, retry_after=2, body=problem(429, "Slow down"))
    sandbox.fail_requests(503, times=2)  # the same, as a shortcut
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tenantry.sandbox.faults import FaultRule, SandboxControls
from tenantry.sandbox.stalwart_jmap import (
    KNOWN_CAPABILITIES,
    MAX_CALLS,
    MAX_SIZE_REQUEST,
    SESSION_LIMITS,
    MethodError,
    RequestError,
    call_method,
    problem,
    resolve_references,
)
from tenantry.sandbox.stalwart_model import SetError
from tenantry.sandbox.stalwart_store import StalwartStore

__all__ = ["StalwartSandbox", "problem"]

CORE = "urn:ietf:params:jmap:core"
STALWART = "urn:stalwart:jmap"
_API_KEY_PRINCIPAL = "admin"


class StalwartSandbox:
    """An in-memory Stalwart management API as an ASGI app (``.app``) with Python helpers for tests.

    ``api_keys`` are accepted as ``Bearer`` tokens (acting as account ``admin``), ``basic_users`` maps
    usernames to passwords for ``Basic``. ``public_url`` fixes the session's URLs (else the request's base
    URL is used); ``mail_host`` is the hostname in MX/CNAME/SRV records (default ``mail.<first domain>``).
    ``fast_dkim`` reuses one 1024-bit RSA key per process instead of generating RSA-2048 per domain.
    """

    def __init__(
        self,
        *,
        api_keys: Collection[str] = (),
        basic_users: Mapping[str, str] | None = None,
        dkim_delay: float = 0.0,
        public_url: str | None = None,
        mail_host: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        fast_dkim: bool = False,
    ) -> None:
        self.store = StalwartStore(clock=clock, dkim_delay=dkim_delay, fast_dkim=fast_dkim, mail_host=mail_host)
        self._api_keys = tuple(api_keys)
        self._users = {name.lower(): password for name, password in (basic_users or {}).items()}
        self._public_url = public_url.rstrip("/") if public_url else None
        self._lock = threading.RLock()
        names = [_API_KEY_PRINCIPAL, *sorted(n for n in self._users if n != _API_KEY_PRINCIPAL)]
        self._principals = {name: self.store.new_id() for name in names}
        self._session_state = hashlib.sha256("|".join(names).encode()).hexdigest()[:12]
        routes = [
            Route("/.well-known/jmap", self._well_known, methods=["GET"]),
            Route("/jmap/session", self._session, methods=["GET"]),
            Route("/jmap/", self._api, methods=["POST"]),
            Route("/jmap", self._api, methods=["POST"]),
        ]
        self.controls: SandboxControls = SandboxControls(
            Starlette(routes=routes), name="stalwart", fault_content_type="application/problem+json"
        )
        self.app = self.controls

    # -- HTTP ------------------------------------------------------------------------------------------
    async def _well_known(self, request: Request) -> Response:
        return RedirectResponse("/jmap/session", status_code=307)

    async def _session(self, request: Request) -> Response:
        try:
            principal = self._authenticate(request, required=False)
        except RequestError as err:
            return err.response()
        capabilities = {CORE: dict(SESSION_LIMITS)}
        if principal is None:
            return JSONResponse({"capabilities": capabilities})
        base = self._public_url or str(request.base_url).rstrip("/")
        account_id = self._principals[principal]
        return JSONResponse(
            {
                "capabilities": capabilities,
                "accounts": {
                    account_id: {
                        "name": principal,
                        "isPersonal": True,
                        "isReadOnly": False,
                        "accountCapabilities": {STALWART: {}},
                    }
                },
                "primaryAccounts": {STALWART: account_id},
                "username": principal,
                "apiUrl": f"{base}/jmap/",
                "downloadUrl": f"{base}/jmap/download/{{accountId}}/{{blobId}}/{{name}}?accept={{type}}",
                "uploadUrl": f"{base}/jmap/upload/{{accountId}}/",
                "eventSourceUrl": f"{base}/jmap/eventsource/?types={{types}}&closeafter={{closeafter}}&ping={{ping}}",
                "state": self._session_state,
            }
        )

    async def _api(self, request: Request) -> Response:
        try:
            principal = self._authenticate(request, required=True)
            assert principal is not None
            # Upstream (crates/http/src/request.rs) checks a Content-Type only when one is sent.
            content_type = request.headers.get("content-type")
            if content_type is not None and content_type.split(";", 1)[0].strip().lower() != "application/json":
                raise RequestError.jmap(
                    "notJSON", "Failed to parse JSON: The Content-Type header must be application/json."
                )
            body = await request.body()
            if len(body) > MAX_SIZE_REQUEST:
                raise RequestError.limit("maxSizeRequest")
            try:
                payload = json.loads(body)
            except ValueError as err:
                # A body that does not parse is not a JMAP request; upstream's detail is the body itself.
                raise RequestError.jmap("notRequest", body.decode(errors="replace")) from err
            with self._lock:
                result = self._execute(self._principals[principal], payload, body)
        except RequestError as err:
            return err.response()
        return JSONResponse(result)

    def _authenticate(self, request: Request, *, required: bool) -> str | None:
        """The caller's principal name, ``None`` when anonymous is allowed; never echoes credentials."""
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if not header:
            if required:
                raise RequestError.unauthorized()
            return None
        if scheme.lower() == "bearer" and any(hmac.compare_digest(value, key) for key in self._api_keys):
            return _API_KEY_PRINCIPAL
        if scheme.lower() == "basic":
            try:
                username, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise RequestError.unauthorized() from None
            expected = self._users.get(username.lower())
            if expected is not None and hmac.compare_digest(password.encode(), expected.encode()):
                return username.lower()
        raise RequestError.unauthorized()

    # -- JMAP --------------------------------------------------------------------------------------------
    def _execute(self, account_id: str, payload: Any, body: bytes) -> dict[str, Any]:
        # Whatever fails to parse as a Request (crates/jmap-proto/src/request/parser.rs) is notRequest,
        # with the request body as the detail; an unknown capability in "using" fails that parse too.
        not_request = RequestError.jmap("notRequest", body.decode(errors="replace"))
        if (
            not isinstance(payload, dict)
            or not isinstance(payload.get("using"), list)
            or not isinstance(payload.get("methodCalls"), list)
        ):
            raise not_request
        for urn in payload["using"]:
            if not isinstance(urn, str) or urn not in KNOWN_CAPABILITIES:
                raise not_request
        calls = payload["methodCalls"]
        for call in calls:
            if not (
                isinstance(call, list)
                and len(call) == 3
                and isinstance(call[0], str)
                and isinstance(call[1], dict)
                and isinstance(call[2], str)
            ):
                raise not_request
        given_created = payload.get("createdIds")
        if given_created is not None and not isinstance(given_created, dict):
            raise not_request
        if len(calls) > MAX_CALLS:
            raise RequestError.limit("maxCallsInRequest")
        created: dict[str, str] = {str(k): str(v) for k, v in (given_created or {}).items()}
        self.store.tick()
        responses: list[list[Any]] = []
        for name, arguments, call_id in calls:
            try:
                resolved = resolve_references(arguments, responses)
                responses.append([name, call_method(self.store, name, resolved, account_id, created), call_id])
            except MethodError as err:
                responses.append(["error", err.to_json(), call_id])
        out: dict[str, Any] = {"methodResponses": responses, "sessionState": self._session_state}
        if given_created is not None:
            out["createdIds"] = created
        return out

    # -- helpers for tests and the demo ------------------------------------------------------------------
    def add_domain(self, name: str, **props: Any) -> str:
        """Create a domain out of band (as an operator would in the web UI); returns its id."""
        with self._lock:
            self.store.tick()
            try:
                return self.store.create("Domain", {"name": name, **props}, _no_references)
            except SetError as err:
                raise ValueError(f"domain not created: {err.to_json()}") from err

    def delete_domain(self, domain_id: str) -> None:
        """Destroy a domain out of band (drift) as an operator would: its DKIM keys first, then the domain;
        refused like ``x:Domain/set`` when accounts still use it."""
        with self._lock:
            try:
                if not any(item["object"] == "Account" for item in self.store.linked_objects("Domain", domain_id)):
                    for key_id in self.store.key_ids_of(domain_id):
                        self.store.destroy("DkimSignature", key_id)
                self.store.destroy("Domain", domain_id)
            except SetError as err:
                raise ValueError(f"domain not destroyed: {err.to_json()}") from err

    def domains(self) -> list[dict[str, Any]]:
        """Every domain as ``x:Domain/get`` returns it (zone file included)."""
        return self._read_all("Domain")

    def accounts(self) -> list[dict[str, Any]]:
        """Every account as ``x:Account/get`` returns it."""
        return self._read_all("Account")

    def dkim_keys(self, domain_id: str) -> list[dict[str, Any]]:
        """The domain's DKIM keys that exist now (none before the delay has passed)."""
        with self._lock:
            self.store.tick()
            return [self.store.read("DkimSignature", key_id, None) for key_id in self.store.key_ids_of(domain_id)]

    def generate_dkim_now(self, domain_id: str) -> None:
        """Create the domain's automatic DKIM keys immediately, whatever the delay."""
        with self._lock:
            if domain_id not in self.store.tables["Domain"]:
                raise KeyError(domain_id)
            self.store.generate_dkim(domain_id)

    def fail_requests(
        self, status: int = 503, *, retry_after: float | None = None, times: int | None = None
    ) -> FaultRule:
        """Answer the next JMAP API calls with a problem+json ``status`` (429/503...), optionally limited."""
        return self.controls.fail(
            r"^/jmap/?$", status, method="POST", times=times, retry_after=retry_after, body=problem(status)
        )

    def _read_all(self, obj: str) -> list[dict[str, Any]]:
        with self._lock:
            self.store.tick()
            return [self.store.read(obj, object_id, None) for object_id in self.store.tables[obj]]


def _no_references(value: str) -> str:
    if value.startswith("#"):
        raise SetError("invalidProperties", "Creation references are only valid inside a JMAP request")
    return value
