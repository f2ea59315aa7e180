"""Space members: ``/v1beta1/drives/{id}/root/invite`` and ``/root/permissions``.

Sources: tests/acceptance/features/apiSharingNg1/removeAccessToDrive.feature and listPermissions.feature;
services/graph/pkg/service/v0/api_driveitem_permissions.go (``SpaceRootInvite`` answers 200 with a
one-element collection; permission ids on a space root are ``u:<id>``/``g:<id>``; ``$select`` of the role
list); services/graph/pkg/validate/libregraph.go; reva's rule that a space keeps at least one manager.
"""

from __future__ import annotations

from tests.conformance.ocis.conftest import Ocis
from tests.conformance.ocis.support import (
    FILE_VIEWER,
    MANAGER,
    ROLES_KEY,
    SPACE_EDITOR,
    SPACE_VIEWER,
    error,
    ids,
    invite,
    root_path,
)


async def test_a_manager_invites_a_user_who_then_sees_the_space(ocis: Ocis) -> None:
    member, member_id = ocis.as_member()
    drive = await ocis.create()
    response = await ocis.admin.post(f"{root_path(drive['id'])}/invite", json=invite(member_id, SPACE_VIEWER))

    assert response.status_code == 200
    [permission] = response.json()["value"]
    assert (permission["id"], permission["roles"]) == (f"u:{member_id}", [SPACE_VIEWER])
    assert permission["grantedToV2"]["user"]["id"] == member_id
    assert drive["id"] in ids(await member.get("/graph/v1.0/me/drives"))


async def test_the_permissions_list_the_members_and_the_space_roles(ocis: Ocis) -> None:
    _, member_id = ocis.as_member()
    drive = await ocis.create()
    root = root_path(drive["id"])
    await ocis.admin.post(f"{root}/invite", json=invite(member_id, SPACE_EDITOR))

    listed = (await ocis.admin.get(f"{root}/permissions")).json()
    members = {p["id"]: p["roles"] for p in listed["value"]}
    assert members == {f"u:{ocis.admin_id}": [MANAGER], f"u:{member_id}": [SPACE_EDITOR]}
    assert {SPACE_VIEWER, SPACE_EDITOR, MANAGER} <= {r["id"] for r in listed[ROLES_KEY]}
    roles_only = await ocis.admin.get(f"{root}/permissions", params={"$select": ROLES_KEY})
    assert list(roles_only.json()) == [ROLES_KEY]


async def test_a_manager_changes_a_members_role_and_removes_the_member(ocis: Ocis) -> None:
    member, member_id = ocis.as_member()
    drive = await ocis.create()
    root = root_path(drive["id"])
    await ocis.admin.post(f"{root}/invite", json=invite(member_id, SPACE_VIEWER))

    changed = await ocis.admin.patch(f"{root}/permissions/u:{member_id}", json={"roles": [SPACE_EDITOR]})
    assert (changed.status_code, changed.json()["roles"]) == (200, [SPACE_EDITOR])
    assert (await ocis.admin.delete(f"{root}/permissions/u:{member_id}")).status_code == 204
    assert drive["id"] not in ids(await member.get("/graph/v1.0/me/drives"))


async def test_the_last_manager_cannot_leave_the_space(ocis: Ocis) -> None:
    drive = await ocis.create()
    response = await ocis.admin.delete(f"{root_path(drive['id'])}/permissions/u:{ocis.admin_id}")
    assert error(response)[:2] == (403, "accessDenied")
    assert drive["id"] in ids(await ocis.admin.get("/graph/v1.0/me/drives"))


async def test_a_manager_may_leave_once_another_manager_exists(ocis: Ocis) -> None:
    member, member_id = ocis.as_member()
    drive = await ocis.create()
    root = root_path(drive["id"])
    await ocis.admin.post(f"{root}/invite", json=invite(member_id, MANAGER))
    assert (await ocis.admin.delete(f"{root}/permissions/u:{ocis.admin_id}")).status_code == 204
    assert error(await member.delete(f"{root}/permissions/u:{member_id}"))[:2] == (403, "accessDenied")


async def test_members_other_than_managers_cannot_remove_members_or_themselves(ocis: Ocis) -> None:
    member, member_id = ocis.as_member()
    drive = await ocis.create()
    root = root_path(drive["id"])
    await ocis.admin.post(f"{root}/invite", json=invite(member_id, SPACE_EDITOR))
    assert error(await member.delete(f"{root}/permissions/u:{ocis.admin_id}"))[:2] == (403, "accessDenied")
    assert error(await member.delete(f"{root}/permissions/u:{member_id}"))[:2] == (403, "accessDenied")
    assert drive["id"] in ids(await member.get("/graph/v1.0/me/drives"))


async def test_a_role_for_files_does_not_apply_to_a_space_root(ocis: Ocis) -> None:
    _, member_id = ocis.as_member()
    drive = await ocis.create()
    response = await ocis.admin.post(f"{root_path(drive['id'])}/invite", json=invite(member_id, FILE_VIEWER))
    assert error(response)[:2] == (400, "invalidRequest")


async def test_an_invite_names_at_least_one_recipient(ocis: Ocis) -> None:
    drive = await ocis.create()
    response = await ocis.admin.post(
        f"{root_path(drive['id'])}/invite", json={"recipients": [], "roles": [SPACE_VIEWER]}
    )
    assert error(response) == (
        400,
        "invalidRequest",
        "Key: 'DriveItemInvite.Recipients' Error:Field validation for 'Recipients' failed on the 'min' tag",
    )


async def test_an_unknown_recipient_is_an_invalid_request(ocis: Ocis) -> None:
    drive = await ocis.create()
    body = invite("00000000-0000-4000-8000-00000000beef", SPACE_VIEWER)
    assert error(await ocis.admin.post(f"{root_path(drive['id'])}/invite", json=body))[:2] == (400, "invalidRequest")
