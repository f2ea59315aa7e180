"""An in-memory authentik (its group API) behind httpx.MockTransport, for the adapter and contract tests."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import httpx

from tenantry.integrations.ports import TenantSpec

TOKEN = "s3cret-api-token-value"
BASE_URL = "https://auth.example.test"
GROUPS = "/api/v3/core/groups/"

Interceptor = Callable[[httpx.Request], httpx.Response | None]


class FakeAuthentik:
    """Just enough of authentik's group API, answering in the shapes its OpenAPI document declares."""

    def __init__(self, *, max_page_size: int = 100, honour_attribute_filter: bool = True) -> None:
        self.groups: dict[str, dict[str, Any]] = {}
        self.requests: list[httpx.Request] = []
        self.interceptors: list[Interceptor] = []
        self.max_page_size = max_page_size
        self.honour_attribute_filter = honour_attribute_filter
        self._num = 0

    def add(self, name: str, attributes: dict[str, Any] | None = None, *, is_superuser: bool = False) -> str:
        self._num += 1
        pk = str(uuid.uuid4())
        self.groups[pk] = {
            "pk": pk,
            "num_pk": self._num,
            "name": name,
            "is_superuser": is_superuser,
            "attributes": dict(attributes or {}),
        }
        return pk

    def by_name(self, name: str) -> list[dict[str, Any]]:
        return [group for group in self.groups.values() if group["name"] == name]

    def calls(self, method: str) -> list[httpx.Request]:
        return [request for request in self.requests if request.method == method]

    @staticmethod
    def render(group: dict[str, Any]) -> dict[str, Any]:
        return {
            **group,
            "parents": [],
            "parents_obj": None,
            "users": [],
            "users_obj": None,
            "roles": [],
            "roles_obj": [],
            "inherited_roles_obj": None,
            "children": [],
            "children_obj": None,
        }

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        for intercept in list(self.interceptors):
            response = intercept(request)
            if response is not None:
                return response
        return self.serve(request)

    def serve(self, request: httpx.Request) -> httpx.Response:
        """The API's own answer, without the interceptors (an interceptor may apply a request, then fail it)."""
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return httpx.Response(403, json={"detail": "Token invalid/expired"})
        path = request.url.path
        if path == GROUPS and request.method == "GET":
            return self._list(request)
        if path == GROUPS and request.method == "POST":
            return self._create(json.loads(request.content))
        if path.startswith(GROUPS):
            pk = unquote(path.removeprefix(GROUPS).rstrip("/"))
            group = self.groups.get(pk)
            if group is None:
                return httpx.Response(404, json={"detail": "No Group matches the given query."})
            if request.method == "GET":
                return httpx.Response(200, json=self.render(group))
            if request.method == "PATCH":
                body = json.loads(request.content)
                if "name" in body and any(g["name"] == body["name"] and g is not group for g in self.groups.values()):
                    return httpx.Response(400, json={"name": ["Group with this name already exists."]})
                group.update(body)
                return httpx.Response(200, json=self.render(group))
            if request.method == "DELETE":
                del self.groups[pk]
                return httpx.Response(204)
        return httpx.Response(405, json={"detail": "Method not allowed."})

    def _list(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        found = sorted(self.groups.values(), key=lambda group: group["num_pk"])
        if "name" in params:
            found = [group for group in found if group["name"] == params["name"]]
        if "attributes" in params and self.honour_attribute_filter:
            wanted = json.loads(params["attributes"])
            found = [
                group for group in found if all(group["attributes"].get(key) == value for key, value in wanted.items())
            ]
        size = min(int(params.get("page_size", "20")), self.max_page_size)
        page = int(params.get("page", "1"))
        total_pages = max(1, -(-len(found) // size))
        chunk = found[(page - 1) * size : page * size]
        pagination = {
            "next": page + 1 if page < total_pages else 0,
            "previous": page - 1 if page > 1 else 0,
            "count": len(found),
            "current": page,
            "total_pages": total_pages,
            "start_index": (page - 1) * size + 1 if chunk else 0,
            "end_index": (page - 1) * size + len(chunk),
        }
        return httpx.Response(
            200, json={"pagination": pagination, "results": [self.render(g) for g in chunk], "autocomplete": {}}
        )

    def _create(self, body: dict[str, Any]) -> httpx.Response:
        if self.by_name(body["name"]):
            return httpx.Response(400, json={"name": ["Group with this name already exists."]})
        pk = self.add(body["name"], body.get("attributes"), is_superuser=body.get("is_superuser", False))
        return httpx.Response(201, json=self.render(self.groups[pk]))


def crash_page(request: httpx.Request | None = None) -> httpx.Response:
    """authentik's answer to a write it crashed on: its error view serves only GET, so 405, empty body."""
    return httpx.Response(405, headers={"Allow": "GET, HEAD, OPTIONS", "Content-Type": "text/html; charset=utf-8"})


def once(method: str, respond: Callable[[httpx.Request], httpx.Response | None]) -> Interceptor:
    """An interceptor that acts on the first request with ``method`` only."""
    fired = False

    def intercept(request: httpx.Request) -> httpx.Response | None:
        nonlocal fired
        if fired or request.method != method:
            return None
        fired = True
        return respond(request)

    return intercept


TENANT = TenantSpec(
    id="7f3c0d1e-0000-4000-8000-000000000001",
    slug="acme",
    name="Acme",
    generation=1,
    mail_domain="acme.example",
    quota_bytes=10**9,
)
OURS = {"tenant_slug": "acme", "tenant_id": TENANT.id, "managed_by": "tenantry"}
