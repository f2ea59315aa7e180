"""Listing spaces: ``/me/drives`` and ``/drives`` in v1.0 and v1beta1, their ``$filter`` and ``$orderby``.

Sources: tests/acceptance/features/apiSpaces/listSpaces.feature and spaceManagement.feature;
services/graph/pkg/service/v0/drives.go (``getDrives``, ``generateCs3Filters``, ``sortSpaces``) and
service.go (the routes); godata v1.0.10 ``ParseUrlQuery`` in strict mode (unknown or repeated parameters);
base.go ``cs3SpacePermissionsToLibreGraph`` (legacy role names on v1.0, role ids on v1beta1).
"""

from __future__ import annotations

import pytest

from tests.conformance.ocis.conftest import Ocis
from tests.conformance.ocis.support import MANAGER, drive_path, error, ids, invite, root_path

PROJECTS = {"$filter": "driveType eq 'project'"}


@pytest.mark.parametrize("version", ["v1.0", "v1beta1"])
async def test_me_drives_lists_the_spaces_the_caller_is_a_member_of(ocis: Ocis, version: str) -> None:
    drive = await ocis.create()
    listed = await ocis.admin.get(f"/graph/{version}/me/drives", params=PROJECTS)
    assert drive["id"] in ids(listed)


async def test_v1_shows_legacy_role_names_and_v1beta1_role_ids(ocis: Ocis) -> None:
    drive = await ocis.create()
    by_id = {"$filter": f"id eq '{drive['id']}'"}
    [legacy] = (await ocis.admin.get("/graph/v1.0/me/drives", params=by_id)).json()["value"]
    [unified] = (await ocis.admin.get("/graph/v1beta1/me/drives", params=by_id)).json()["value"]

    [old] = legacy["root"]["permissions"]
    assert (old["roles"], old["grantedToIdentities"][0]["user"]["id"]) == (["manager"], ocis.admin_id)
    [new] = unified["root"]["permissions"]
    assert (new["roles"], new["grantedToV2"]["user"]["id"]) == ([MANAGER], ocis.admin_id)
    assert new["id"] == f"u:{ocis.admin_id}"


async def test_filter_by_id_returns_just_that_space(ocis: Ocis) -> None:
    drive = await ocis.create()
    await ocis.create("Other")
    listed = await ocis.admin.get("/graph/v1.0/me/drives", params={"$filter": f"id eq '{drive['id']}'"})
    assert ids(listed) == [drive["id"]]


async def test_filter_by_drive_type_returns_only_that_type(ocis: Ocis) -> None:
    drive = await ocis.create()
    listed = (await ocis.admin.get("/graph/v1.0/drives", params=PROJECTS)).json()["value"]
    assert drive["id"] in [d["id"] for d in listed]
    assert {d["driveType"] for d in listed} == {"project"}


async def test_an_eq_on_another_property_is_ignored(ocis: Ocis) -> None:
    drive = await ocis.create()
    listed = await ocis.admin.get("/graph/v1.0/me/drives", params={"$filter": "name eq 'certainly not this'"})
    assert drive["id"] in ids(listed)


@pytest.mark.parametrize(
    ("expression", "operand"),
    [
        ("driveType ne 'personal'", "ne"),
        ("driveType eq 'project' and name eq 'x'", "and"),
        ("driveType eq 'project' or driveType eq 'personal'", "or"),
        ("contains(name,'x')", "contains"),
    ],
)
async def test_any_other_filter_is_not_supported(ocis: Ocis, expression: str, operand: str) -> None:
    response = await ocis.admin.get("/graph/v1.0/me/drives", params={"$filter": expression})
    assert error(response) == (501, "notSupported", f"Unsupported filter operand: {operand}")


@pytest.mark.parametrize("path", ["/graph/v1.0/me/drives", "/graph/v1.0/drives", "/graph/v1beta1/me/drives"])
async def test_an_unknown_query_parameter_is_a_bad_request(ocis: Ocis, path: str) -> None:
    response = await ocis.admin.get(path, params={"filter": "driveType eq 'project'"})
    text = "Query parameter 'filter' is not supported"
    assert error(response) == (400, "invalidRequest", f"{text}. Cause: {text}")


async def test_a_repeated_query_parameter_is_a_bad_request(ocis: Ocis) -> None:
    response = await ocis.admin.get("/graph/v1.0/me/drives?$top=1&$top=2")
    text = "Query parameter '$top' cannot be specified more than once"
    assert error(response) == (400, "invalidRequest", f"{text}. Cause: {text}")


async def test_ordering_by_an_unsupported_property_is_a_bad_request(ocis: Ocis) -> None:
    response = await ocis.admin.get("/graph/v1.0/me/drives", params={"$orderby": "quota"})
    assert error(response) == (400, "invalidRequest", "We do not support <quota> as a order parameter")


@pytest.mark.parametrize("direction", ["asc", "desc"])
async def test_ordering_by_name_sorts_either_way(ocis: Ocis, direction: str) -> None:
    first = await ocis.create("A first")
    second = await ocis.create("B second")
    response = await ocis.admin.get("/graph/v1.0/me/drives", params={**PROJECTS, "$orderby": f"name {direction}"})
    ours = [i for i in ids(response) if i in {first["id"], second["id"]}]
    assert ours == ([first["id"], second["id"]] if direction == "asc" else [second["id"], first["id"]])


async def test_an_ordinary_user_sees_neither_the_space_nor_its_details(ocis: Ocis) -> None:
    member, _ = ocis.as_member()
    drive = await ocis.create()
    assert drive["id"] not in ids(await member.get("/graph/v1.0/me/drives"))
    assert drive["id"] not in ids(await member.get("/graph/v1.0/drives"))
    assert error(await member.get(drive_path(drive["id"])))[:2] == (404, "itemNotFound")


async def test_a_space_admin_lists_on_drives_the_project_spaces_it_is_no_member_of(ocis: Ocis) -> None:
    member, member_id = ocis.as_member()
    drive = await ocis.create()
    root = root_path(drive["id"])
    assert (await ocis.admin.post(f"{root}/invite", json=invite(member_id, MANAGER))).status_code == 200
    left = await member.delete(f"{root}/permissions/u:{ocis.admin_id}")
    assert left.status_code == 204, left.text

    assert drive["id"] in ids(await ocis.admin.get("/graph/v1.0/drives", params=PROJECTS))
    assert drive["id"] not in ids(await ocis.admin.get("/graph/v1.0/me/drives", params=PROJECTS))
    assert (await ocis.admin.get(drive_path(drive["id"]))).status_code == 200
