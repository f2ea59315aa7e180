"""Changing a space: name, description, alias and quota through ``PATCH /v1.0/drives/{id}``.

Sources: tests/acceptance/features/apiSpaces/changeSpaces.feature, spaceManagement.feature and
setQuota.feature; services/graph/pkg/service/v0/drives.go ``UpdateDrive`` (strict, case-insensitive decoding
of a ``DriveUpdate``; ``generalException`` for a bad name; ``canSetSpaceQuota`` looks the id up among project
spaces, so an unknown id needs the personal-quota permission a Space Admin lacks; PERMISSION_DENIED and
NOT_FOUND both answer 404); decomposedfs ``UpdateStorageSpace`` (quota 0, or -1 read back, is unlimited).
"""

from __future__ import annotations

import pytest

from tests.conformance.ocis.conftest import Ocis
from tests.conformance.ocis.support import SPACE_EDITOR, SPACE_VIEWER, drive_path, error, invite, root_path

UNKNOWN_DRIVE = "storage-users-1$00000000-0000-4000-8000-00000000dead"


async def test_a_space_admin_renames_and_describes_a_space(ocis: Ocis) -> None:
    drive = await ocis.create("Project Jupiter")
    path = drive_path(drive["id"])
    renamed = await ocis.admin.patch(path, json={"name": ocis.name("Project Death Star")})
    described = await ocis.admin.patch(path, json={"description": "The Death Star is a fictional station"})
    assert (renamed.status_code, renamed.json()["name"]) == (200, ocis.name("Project Death Star"))
    assert (described.status_code, described.json()["description"]) == (200, "The Death Star is a fictional station")
    assert described.json()["driveType"] == "project"


async def test_keys_are_decoded_case_insensitively(ocis: Ocis) -> None:
    drive = await ocis.create()
    response = await ocis.admin.patch(
        drive_path(drive["id"]), json={"NAME": ocis.name("Renamed"), "Quota": {"TOTAL": 40}}
    )
    assert (response.status_code, response.json()["name"]) == (200, ocis.name("Renamed"))
    assert response.json()["quota"]["total"] == 40


async def test_a_space_admin_changes_the_quota(ocis: Ocis) -> None:
    drive = await ocis.create(quota={"total": 20})
    response = await ocis.admin.patch(drive_path(drive["id"]), json={"quota": {"total": 100}})
    assert (response.status_code, response.json()["quota"]["total"]) == (200, 100)
    assert (await ocis.admin.get(drive_path(drive["id"]))).json()["quota"]["total"] == 100


@pytest.mark.parametrize("total", [0, -1])
async def test_zero_or_minus_one_lifts_the_quota(ocis: Ocis, total: int) -> None:
    drive = await ocis.create(quota={"total": 20})
    response = await ocis.admin.patch(drive_path(drive["id"]), json={"quota": {"total": total}})
    assert response.status_code == 200
    assert (response.json()["quota"]["total"], response.json()["quota"]["used"]) == (0, 0)


async def test_an_invalid_name_is_a_general_exception(ocis: Ocis) -> None:
    drive = await ocis.create()
    response = await ocis.admin.patch(drive_path(drive["id"]), json={"name": "acme.com"})
    assert error(response) == (400, "generalException", 'Spacenames must not contain [/ \\ . : ? * " > < |]')
    assert (await ocis.admin.get(drive_path(drive["id"]))).json()["name"] == drive["name"]


async def test_an_unknown_field_is_an_invalid_request(ocis: Ocis) -> None:
    drive = await ocis.create()
    response = await ocis.admin.patch(drive_path(drive["id"]), json={"size": 5})
    assert error(response) == (400, "invalidRequest", 'Invalid request body: error: json: unknown field "size"')


async def test_renaming_an_unknown_space_is_item_not_found(ocis: Ocis) -> None:
    response = await ocis.admin.patch(drive_path(UNKNOWN_DRIVE), json={"name": ocis.name("New name")})
    assert error(response)[:2] == (404, "itemNotFound")


async def test_a_quota_change_on_an_unknown_space_is_forbidden_to_a_space_admin(ocis: Ocis) -> None:
    response = await ocis.admin.patch(drive_path(UNKNOWN_DRIVE), json={"quota": {"total": 10}})
    assert error(response) == (403, "notAllowed", "User is not allowed to set the space quota")


@pytest.mark.parametrize("role", [SPACE_EDITOR, SPACE_VIEWER])
async def test_members_other_than_managers_cannot_change_name_description_or_quota(ocis: Ocis, role: str) -> None:
    member, member_id = ocis.as_member()
    drive = await ocis.create(quota={"total": 20})
    assert (await ocis.admin.post(f"{root_path(drive['id'])}/invite", json=invite(member_id, role))).status_code == 200
    path = drive_path(drive["id"])
    renamed = await member.patch(path, json={"name": ocis.name("Mine now")})
    described = await member.patch(path, json={"description": "mine"})
    requota = await member.patch(path, json={"quota": {"total": 100}})
    assert error(renamed)[:2] == (404, "itemNotFound")
    assert error(described)[:2] == (404, "itemNotFound")
    assert error(requota) == (403, "notAllowed", "User is not allowed to set the space quota")
    after = (await ocis.admin.get(path)).json()
    assert (after["name"], after["quota"]["total"]) == (drive["name"], 20)


async def test_a_user_without_access_gets_a_404_even_for_an_empty_patch(ocis: Ocis) -> None:
    member, _ = ocis.as_member()
    drive = await ocis.create()
    assert error(await member.patch(drive_path(drive["id"]), json={}))[:2] == (404, "itemNotFound")
