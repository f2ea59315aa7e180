"""Disabling, restoring and purging spaces: ``DELETE`` (with ``Purge: T``) and ``PATCH`` with ``Restore: T``.

Sources: tests/acceptance/features/apiSpaces/disableAndDeleteSpaces.feature, restoreSpaces.feature and
spaceManagement.feature; docs/apis/http/graph/spaces.md; services/graph/pkg/service/v0/drives.go
``DeleteDrive``/``UpdateDrive``; decomposedfs ``DeleteStorageSpace`` (a disable just sets the deletion time
again, a purge of an enabled space is "can't purge enabled space") and ``StorageSpaceFromNode`` (a disabled
space is listed only for its managers and for users who may list every space).
"""

from __future__ import annotations

from tests.conformance.ocis.conftest import Ocis
from tests.conformance.ocis.support import SPACE_EDITOR, SPACE_VIEWER, drive_path, error, ids, invite, root_path


async def test_a_disabled_space_stays_listed_for_its_manager_marked_trashed(ocis: Ocis) -> None:
    drive = await ocis.create(description="Tenant files")
    assert (await ocis.admin.delete(drive_path(drive["id"]))).status_code == 204

    [listed] = (await ocis.admin.get("/graph/v1.0/me/drives", params={"$filter": f"id eq '{drive['id']}'"})).json()[
        "value"
    ]
    assert listed["root"]["deleted"] == {"state": "trashed"}
    assert listed["name"] == drive["name"]
    fetched = await ocis.admin.get(drive_path(drive["id"]))
    assert (fetched.status_code, fetched.json()["root"]["deleted"]["state"]) == (200, "trashed")


async def test_disabling_twice_answers_204_both_times(ocis: Ocis) -> None:
    drive = await ocis.create()
    path = drive_path(drive["id"])
    assert [(await ocis.admin.delete(path)).status_code for _ in range(2)] == [204, 204]


async def test_an_enabled_space_cannot_be_purged(ocis: Ocis) -> None:
    drive = await ocis.create()
    response = await ocis.admin.delete(drive_path(drive["id"]), headers={"Purge": "T"})
    status, code, message = error(response)
    assert (status, code) == (400, "invalidRequest")
    assert message.endswith("can't purge enabled space")
    assert (await ocis.admin.get(drive_path(drive["id"]))).status_code == 200


async def test_a_disabled_space_is_purged_for_good(ocis: Ocis) -> None:
    drive = await ocis.create()
    path = drive_path(drive["id"])
    assert (await ocis.admin.delete(path)).status_code == 204
    assert (await ocis.admin.delete(path, headers={"Purge": "T"})).status_code == 204
    assert error(await ocis.admin.get(path))[:2] == (404, "itemNotFound")
    assert drive["id"] not in ids(
        await ocis.admin.get("/graph/v1.0/drives", params={"$filter": "driveType eq 'project'"})
    )
    assert error(await ocis.admin.delete(path))[:2] == (404, "itemNotFound")


async def test_restoring_enables_the_space_again(ocis: Ocis) -> None:
    drive = await ocis.create(description="Tenant files")
    path = drive_path(drive["id"])
    await ocis.admin.delete(path)
    restored = await ocis.admin.patch(path, json={}, headers={"Restore": "T"})
    assert restored.status_code == 200
    assert "deleted" not in restored.json()["root"]
    assert (restored.json()["description"], restored.json()["quota"]["total"]) == (
        "Tenant files",
        drive["quota"]["total"],
    )


async def test_members_other_than_managers_lose_sight_of_a_disabled_space(ocis: Ocis) -> None:
    member, member_id = ocis.as_member()
    drive = await ocis.create()
    await ocis.admin.post(f"{root_path(drive['id'])}/invite", json=invite(member_id, SPACE_EDITOR))
    assert drive["id"] in ids(await member.get("/graph/v1.0/me/drives"))
    await ocis.admin.delete(drive_path(drive["id"]))
    assert drive["id"] not in ids(await member.get("/graph/v1.0/me/drives"))
    assert error(await member.get(drive_path(drive["id"])))[:2] == (404, "itemNotFound")


async def test_members_other_than_managers_cannot_disable_restore_or_purge(ocis: Ocis) -> None:
    member, member_id = ocis.as_member()
    drive = await ocis.create()
    path = drive_path(drive["id"])
    await ocis.admin.post(f"{root_path(drive['id'])}/invite", json=invite(member_id, SPACE_VIEWER))
    assert error(await member.delete(path))[:2] == (404, "itemNotFound")
    await ocis.admin.delete(path)
    assert error(await member.patch(path, json={}, headers={"Restore": "T"}))[:2] == (404, "itemNotFound")
    assert error(await member.delete(path, headers={"Purge": "T"}))[:2] == (404, "itemNotFound")


async def test_users_without_access_cannot_touch_the_space(ocis: Ocis) -> None:
    member, _ = ocis.as_member()
    drive = await ocis.create()
    path = drive_path(drive["id"])
    assert error(await member.delete(path))[:2] == (404, "itemNotFound")
    await ocis.admin.delete(path)
    assert error(await member.patch(path, json={}, headers={"Restore": "T"}))[:2] == (404, "itemNotFound")
    assert error(await member.delete(path, headers={"Purge": "T"}))[:2] == (404, "itemNotFound")


async def test_the_permissions_of_a_disabled_space_are_not_found(ocis: Ocis) -> None:
    drive = await ocis.create()
    await ocis.admin.delete(drive_path(drive["id"]))
    response = await ocis.admin.get(f"{root_path(drive['id'])}/permissions")
    assert error(response)[:2] == (404, "itemNotFound")
