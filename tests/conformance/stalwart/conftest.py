"""The server under test: the sandbox in process, or a real Stalwart named by the environment.

``TENANTRY_CONFORMANCE_STALWART_URL`` is the server's root URL (``/jmap/`` is appended) and
``TENANTRY_CONFORMANCE_STALWART_API_KEY`` an API key of an administrator (``sysDomain*``, ``sysAccount*``,
``sysDkimSignature*`` permissions). Every test creates its objects under fresh random names through
:class:`Stalwart`, which removes them again afterwards, newest first (accounts and keys before their domain).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tenantry.sandbox.stalwart import StalwartSandbox

URL_ENV = "TENANTRY_CONFORMANCE_STALWART_URL"
KEY_ENV = "TENANTRY_CONFORMANCE_STALWART_API_KEY"
USING = ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"]
SANDBOX_KEY = "conformance-api-key"
# Automatic DKIM keys come from a background task on a real server.
KEY_WAIT_SECONDS = 60.0


@dataclass
class Stalwart:
    """JMAP calls against the server under test, remembering what they created so it can be removed."""

    http: httpx.AsyncClient
    api_key: str
    sandbox: StalwartSandbox | None = None
    created: list[tuple[str, str]] = field(default_factory=list)

    @property
    def is_sandbox(self) -> bool:
        return self.sandbox is not None

    # -- the wire ----------------------------------------------------------------------------------------
    async def post(
        self, body: Any = None, *, content: bytes | None = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """POST to ``/jmap/`` as the administrator (unless ``headers`` carry another Authorization)."""
        sent = {"Authorization": f"Bearer {self.api_key}", **(headers or {})}
        if content is not None:
            return await self.http.post("/jmap/", content=content, headers=sent)
        return await self.http.post("/jmap/", json=body, headers=sent)

    async def calls(self, *calls: list[Any]) -> list[list[Any]]:
        """The method responses of one request made of ``calls``; the request itself must succeed."""
        response = await self.post({"using": USING, "methodCalls": list(calls)})
        assert response.status_code == 200, response.text
        answers: list[list[Any]] = response.json()["methodResponses"]
        for name, args, _ in answers:
            if name.endswith("/set"):
                self._remember(name, args)
        return answers

    async def call(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        """The arguments of the response to one call, which must not be an error."""
        [[answered, result, _]] = await self.calls([name, args, "c"])
        assert answered == name, result
        out: dict[str, Any] = result
        return out

    async def method_error(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        """The arguments of the method-level error one call is answered with."""
        [[answered, result, _]] = await self.calls([name, args, "c"])
        assert answered == "error", result
        out: dict[str, Any] = result
        return out

    def _remember(self, method: str, result: dict[str, Any]) -> None:
        obj = method.removeprefix("x:").split("/", 1)[0]
        self.created += [(obj, str(item["id"])) for item in result.get("created", {}).values()]

    # -- objects -----------------------------------------------------------------------------------------
    async def create(self, obj: str, value: dict[str, Any]) -> str:
        result = await self.call(f"x:{obj}/set", {"create": {"new": value}})
        assert set(result.get("created", {})) == {"new"}, result
        return str(result["created"]["new"]["id"])

    async def refused(self, obj: str, value: dict[str, Any]) -> dict[str, Any]:
        """The SetError a create of ``value`` is refused with."""
        result = await self.call(f"x:{obj}/set", {"create": {"new": value}})
        assert "created" not in result, result
        error: dict[str, Any] = result["notCreated"]["new"]
        return error

    async def get(self, obj: str, object_id: str, properties: list[str] | None = None) -> dict[str, Any]:
        args: dict[str, Any] = {"ids": [object_id]}
        if properties is not None:
            args["properties"] = properties
        [item] = (await self.call(f"x:{obj}/get", args))["list"]
        out: dict[str, Any] = item
        return out

    @staticmethod
    def unique_domain() -> str:
        return f"tconf-{secrets.token_hex(5)}.example.com"

    async def domain(self, **props: Any) -> tuple[str, str]:
        """A new domain (name, id) whose DKIM keys are managed by hand unless ``props`` say otherwise."""
        name = self.unique_domain()
        value = {"name": name, "dkimManagement": {"@type": "Manual"}, **props}
        return name, await self.create("Domain", value)

    async def user(self, domain_id: str, name: str = "user", **props: Any) -> str:
        return await self.create("Account", {"@type": "User", "name": name, "domainId": domain_id, **props})

    async def keys(self, domain_id: str) -> list[dict[str, Any]]:
        [_, [_, got, _]] = await self.calls(
            ["x:DkimSignature/query", {"filter": {"domainId": domain_id}}, "q"],
            ["x:DkimSignature/get", {"#ids": {"resultOf": "q", "name": "x:DkimSignature/query", "path": "/ids"}}, "g"],
        )
        keys: list[dict[str, Any]] = got["list"]
        return keys

    async def wait_for_keys(self, domain_id: str, count: int) -> list[dict[str, Any]]:
        """The domain's DKIM keys once there are ``count`` of them (made by Stalwart's background task)."""
        deadline = time.monotonic() + KEY_WAIT_SECONDS
        while True:
            keys = await self.keys(domain_id)
            if len(keys) >= count or time.monotonic() > deadline:
                return keys
            await asyncio.sleep(0.5)

    # -- cleanup -----------------------------------------------------------------------------------------
    async def cleanup(self) -> None:
        """Destroy what the test created, newest first; a domain's keys (even automatic ones) go before it."""
        for obj, object_id in reversed(self.created):
            if obj == "Domain":
                await self._destroy_domain(object_id)
            else:
                await self._destroy(obj, [object_id])
        self.created.clear()

    async def _destroy_domain(self, domain_id: str) -> None:
        # On a real server the DkimManagement task may add a key between our query and our destroy.
        for _ in range(10):
            keys = [key["id"] for key in await self.keys(domain_id)]
            if keys:
                await self._destroy("DkimSignature", keys)
            refused = await self._destroy("Domain", [domain_id], strict=False)
            linked = refused.get(domain_id, {}).get("linkedObjects", [])
            if not refused or not all(item["object"] == "DkimSignature" for item in linked):
                assert not refused, f"could not remove Domain {domain_id}: {refused}"
                return
            await asyncio.sleep(0.5)
        pytest.fail(f"could not remove Domain {domain_id}: its DKIM keys kept coming back")

    async def _destroy(self, obj: str, ids: list[str], *, strict: bool = True) -> dict[str, dict[str, Any]]:
        response = await self.post({"using": USING, "methodCalls": [[f"x:{obj}/set", {"destroy": ids}, "d"]]})
        [[_, result, _]] = response.json()["methodResponses"]
        refused = {k: v for k, v in result.get("notDestroyed", {}).items() if v.get("type") != "notFound"}
        assert not (strict and refused), f"could not remove {obj}: {refused}"
        return refused


def _target() -> tuple[str, str] | None:
    url, key = os.environ.get(URL_ENV, "").strip(), os.environ.get(KEY_ENV, "").strip()
    if bool(url) != bool(key):
        pytest.fail(f"set both {URL_ENV} and {KEY_ENV} to test a real Stalwart, or neither", pytrace=False)
    return (url.rstrip("/"), key) if url else None


@pytest.fixture
async def stalwart() -> AsyncIterator[Stalwart]:
    target = _target()
    if target is not None:
        url, key = target
        async with httpx.AsyncClient(base_url=url, timeout=30.0) as http:
            server = Stalwart(http, key)
            try:
                yield server
            finally:
                await server.cleanup()
        return
    sandbox = StalwartSandbox(api_keys=[SANDBOX_KEY], fast_dkim=True)
    transport = httpx.ASGITransport(app=sandbox.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://stalwart.conformance") as http:
        server = Stalwart(http, SANDBOX_KEY, sandbox)
        yield server
        await server.cleanup()
    # The cleanup a real server relies on must leave nothing behind.
    assert (sandbox.domains(), sandbox.accounts(), sandbox.store.tables["DkimSignature"]) == ([], [], {})
