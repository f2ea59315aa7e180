"""The oCIS sandbox as its own tests drive it: a configured sandbox, a client on it, and reading its answers."""

from __future__ import annotations

from urllib.parse import quote

import httpx

from tenantry.sandbox.ocis import OcisSandbox

BOB = "0d7a1f04-5b71-4a7c-9f0e-2c9b3a1e6d10"
CAROL = "6c2e8b55-91d4-4f8a-8a6b-3d5e7f9a0b21"
TEAM = "a41f5c2e-7d3b-4e6a-b8c9-0f1e2d3c4b5a"

Client = httpx.AsyncClient


def make_sandbox(**kwargs: object) -> OcisSandbox:
    options: dict[str, object] = {
        "app_tokens": {"svc": "svc-app-token", "alice": "alice-app-token", "admin2": "admin2-token"},
        "bearer_validator": lambda token: "svc" if token == "valid-access-token" else None,
        "space_admins": {"svc", "admin2"},
        "public_url": "https://cloud.example.test",
        "users": {BOB: "Bob", CAROL: "Carol"},
        "groups": {TEAM: "Team"},
    }
    options.update(kwargs)
    return OcisSandbox(**options)  # type: ignore[arg-type]


def client_for(sandbox: OcisSandbox, auth: tuple[str, str] | None = ("svc", "svc-app-token")) -> Client:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox.app), base_url="http://ocis.test", auth=auth)


def drive_path(drive_id: str) -> str:
    return f"/graph/v1.0/drives/{quote(drive_id, safe='')}"


def root_path(drive_id: str) -> str:
    return f"/graph/v1beta1/drives/{quote(drive_id, safe='')}/root"


async def create(client: httpx.AsyncClient, name: str = "Acme", **extra: object) -> dict[str, object]:
    response = await client.post("/graph/v1.0/drives", json={"name": name, **extra})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def error(response: httpx.Response) -> tuple[str, str]:
    body = response.json()["error"]
    assert set(body["innererror"]) == {"date", "request-id"}
    assert body["innererror"]["date"].endswith("Z")
    assert len(body["innererror"]["date"]) == len("2026-01-02T03:04:05Z")
    return body["code"], body["message"]
