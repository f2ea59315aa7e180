"""The oCIS sandbox's drive indexes and rendered drives stay in step with its spaces: a listing filtered by
type or id finds what a scan would, and every change of a space shows in the next answer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.responses import JSONResponse

from tenantry.sandbox.ocis import OcisSandbox
from tests.support.ocis_sandbox import BOB, Client, client_for, create, drive_path, make_sandbox, root_path

PROJECTS = {"$filter": "driveType eq 'project'"}


@pytest.fixture
def sandbox() -> OcisSandbox:
    return make_sandbox()


@pytest.fixture
async def client(sandbox: OcisSandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(sandbox) as c:
        yield c


async def _listed(client: Client, path: str = "/graph/v1.0/drives", **params: str) -> list[dict[str, Any]]:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    value: list[dict[str, Any]] = response.json()["value"]
    return value


def _expected(sandbox: OcisSandbox, drive_type: str | None = None, *, unified: bool = False) -> list[dict[str, Any]]:
    """What a scan of every space, rendered afresh, lists (the caller is a Space Admin)."""
    spaces = [s for s in sandbox._spaces.values() if drive_type is None or s.drive_type == drive_type]
    return [s.as_drive(sandbox.public_url, unified_roles=unified, free_bytes=sandbox.free_bytes) for s in spaces]


async def test_a_listing_by_type_or_id_finds_what_a_scan_finds(sandbox: OcisSandbox, client: Client) -> None:
    first = await create(client, "First")
    personal = sandbox.add_space("Home", drive_type="personal", manager="svc")
    second = await create(client, "Second")
    assert [d["id"] for d in await _listed(client, **PROJECTS)] == [first["id"], second["id"]]
    assert [d["id"] for d in await _listed(client, **{"$filter": "driveType eq 'personal'"})] == [personal["id"]]
    assert await _listed(client, **{"$filter": "driveType eq 'virtual'"}) == []
    by_id = await _listed(client, **{"$filter": f"id eq '{second['id']}'"})
    assert [d["id"] for d in by_id] == [second["id"]]
    assert await _listed(client, **{"$filter": "id eq 'storage-users-1$nothing'"}) == []
    assert await _listed(client, **PROJECTS) == _expected(sandbox, "project")


async def test_a_purged_space_leaves_the_listings_and_the_type_index(sandbox: OcisSandbox, client: Client) -> None:
    kept = await create(client, "Kept")
    gone = await create(client, "Gone")
    assert (await client.delete(drive_path(str(gone["id"])))).status_code == 204
    assert (await client.delete(drive_path(str(gone["id"])), headers={"Purge": "T"})).status_code == 204
    assert [d["id"] for d in await _listed(client, **PROJECTS)] == [kept["id"]]
    assert (await client.get(drive_path(str(gone["id"])))).status_code == 404
    sandbox.delete_space(str(kept["id"]))
    assert await _listed(client, **PROJECTS) == []
    assert sandbox._by_type == {}


async def test_every_change_of_a_space_shows_in_the_next_listing(sandbox: OcisSandbox, client: Client) -> None:
    drive = await create(client, "Acme")
    drive_id = str(drive["id"])
    assert await _listed(client, **PROJECTS) == _expected(sandbox, "project")  # rendered and kept
    changes = [
        lambda: client.patch(drive_path(drive_id), json={"name": "Renamed", "description": "d"}),
        lambda: client.patch(drive_path(drive_id), json={"quota": {"total": 42}}),
        lambda: client.post(
            f"{root_path(drive_id)}/invite",
            json={"recipients": [{"objectId": BOB}], "roles": ["a8d5fe5e-96e3-418d-825b-534dbdf22b99"]},
        ),
        lambda: client.patch(
            f"{root_path(drive_id)}/permissions/u:{BOB}", json={"roles": ["58c63c02-1d89-4572-916a-870abc5a1b7d"]}
        ),
        lambda: client.delete(f"{root_path(drive_id)}/permissions/u:{BOB}"),
        lambda: client.delete(drive_path(drive_id)),
        lambda: client.patch(drive_path(drive_id), headers={"Restore": "T"}, json={}),
    ]
    for change in changes:
        before = await _listed(client, **PROJECTS)
        await change()
        after = await _listed(client, **PROJECTS)
        assert after == _expected(sandbox, "project")
        assert await _listed(client, "/graph/v1beta1/drives", **PROJECTS) == _expected(sandbox, "project", unified=True)
        assert (await client.get(drive_path(drive_id))).json() == after[0]
        assert before != after
    sandbox.set_usage(drive_id, 41)
    assert (await _listed(client, **PROJECTS))[0]["quota"]["used"] == 41
    sandbox.disable_space(drive_id)
    assert (await _listed(client, **PROJECTS))[0]["root"]["deleted"] == {"state": "trashed"}
    sandbox.free_bytes = 7
    await client.patch(drive_path(drive_id), headers={"Restore": "T"}, json={"quota": {"total": 0}})
    assert (await _listed(client, **PROJECTS))[0]["quota"]["remaining"] == 7


async def test_a_listing_is_the_bytes_a_json_response_would_send(sandbox: OcisSandbox, client: Client) -> None:
    await create(client, "Ünïcode “quoted” space", description='tenant "42"')
    await create(client, "Second")
    response = await client.get("/graph/v1.0/drives", params=PROJECTS)
    assert response.headers["content-type"] == "application/json"
    assert response.content == JSONResponse({"value": _expected(sandbox, "project")}).body
    assert json.loads(response.content)["value"][0]["name"] == "Ünïcode “quoted” space"
