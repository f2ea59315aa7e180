"""The oCIS sandbox's space membership (v1beta1 root/invite and root/permissions), and its body decoding."""

from __future__ import annotations

import pytest

from tenantry.sandbox.ocis import OcisSandbox, user_id_for
from tenantry.sandbox.ocis_json import ArrayOf, GoJSONError, Struct, decode
from tenantry.sandbox.ocis_model import MANAGER, SPACE_EDITOR, SPACE_VIEWER
from tests.support.ocis_sandbox import BOB, CAROL, TEAM, client_for, create, error, make_sandbox, root_path

SVC = user_id_for("svc")
ALICE = user_id_for("alice")


def invite_body(object_id: str = BOB, role: str = SPACE_EDITOR, kind: str | None = None) -> dict[str, object]:
    recipient: dict[str, str] = {"objectId": object_id}
    if kind is not None:
        recipient["@libre.graph.recipient.type"] = kind
    return {"recipients": [recipient], "roles": [role]}


@pytest.fixture
def sandbox() -> OcisSandbox:
    return make_sandbox()


async def test_invite_answers_the_permission_with_user_type_and_inviter(sandbox: OcisSandbox) -> None:
    async with client_for(sandbox) as client:
        drive = await create(client)
        response = await client.post(f"{root_path(str(drive['id']))}/invite", json=invite_body())
    assert response.status_code == 200
    assert response.json() == {
        "value": [
            {
                "id": f"u:{BOB}",
                "roles": [SPACE_EDITOR],
                "grantedToV2": {"user": {"id": BOB, "displayName": "Bob", "@libre.graph.userType": "Member"}},
                "invitation": {"invitedBy": {"user": {"id": SVC, "displayName": "svc"}}},
            }
        ]
    }


async def test_group_invite_gets_a_g_prefixed_id_and_an_unknown_type_means_user(sandbox: OcisSandbox) -> None:
    async with client_for(sandbox) as client:
        root = root_path(str((await create(client))["id"]))
        group = await client.post(f"{root}/invite", json=invite_body(TEAM, MANAGER, "group"))
        robot = await client.post(f"{root}/invite", json=invite_body(CAROL, SPACE_VIEWER, "robot"))
    assert group.json()["value"][0]["grantedToV2"] == {"group": {"id": TEAM, "displayName": "Team"}}
    assert group.json()["value"][0]["id"] == f"g:{TEAM}"
    assert robot.json()["value"][0]["id"] == f"u:{CAROL}"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"recipients": [], "roles": [SPACE_VIEWER]},
            "Key: 'DriveItemInvite.Recipients' Error:Field validation for 'Recipients' failed on the 'min' tag",
        ),
        (
            {"recipients": [{"objectId": BOB}], "roles": [SPACE_VIEWER, SPACE_EDITOR]},
            "Key: 'DriveItemInvite.Roles' Error:Field validation for 'Roles' failed on the 'max' tag",
        ),
        (
            {"recipients": [{"objectId": BOB}], "roles": ["not-a-role"]},
            "Key: 'DriveItemInvite.Roles' Error:Field validation for 'Roles' failed on the 'available_role' tag",
        ),
        ({"recipients": [{"objectId": BOB}], "roles": ["b1e2218d-eef8-4d4c-b82d-0f1a1b48f3b5"]}, None),
        ({"recipients": [{"objectId": "unknown-user"}], "roles": [SPACE_VIEWER]}, "ItemNotFound: not found"),
        ({"recipients": [{"objectId": BOB}], "roles": [SPACE_VIEWER], "colour": "blue"}, "Invalid request body"),
    ],
)
async def test_invalid_invite_is_400_and_adds_nobody(
    sandbox: OcisSandbox, body: dict[str, object], message: str | None
) -> None:
    async with client_for(sandbox) as client:
        drive = await create(client)
        response = await client.post(f"{root_path(str(drive['id']))}/invite", json=body)
    assert response.status_code == 400
    code, text = error(response)
    assert code == "invalidRequest"
    assert text == (message or "Role not applicable to this resource")
    assert len(sandbox.permissions(str(drive["id"]))) == 1


async def test_a_listing_offers_the_roles_the_callers_own_role_includes(sandbox: OcisSandbox) -> None:
    drive = sandbox.add_space("Team", manager="svc")
    async with client_for(sandbox) as svc:
        await svc.post(f"{root_path(str(drive['id']))}/invite", json=invite_body(ALICE, SPACE_EDITOR))
        manager_view = (await svc.get(f"{root_path(str(drive['id']))}/permissions")).json()
    async with client_for(sandbox, auth=("alice", "alice-app-token")) as alice:
        editor_view = (await alice.get(f"{root_path(str(drive['id']))}/permissions")).json()
    roles_key = "@libre.graph.permissions.roles.allowedValues"
    assert [(r["id"], r["@libre.graph.weight"]) for r in manager_view[roles_key]] == [
        (SPACE_VIEWER, 1),
        (SPACE_EDITOR, 2),
        (MANAGER, 3),
    ]
    assert [r["id"] for r in editor_view[roles_key]] == [SPACE_VIEWER, SPACE_EDITOR]
    assert {p["id"] for p in editor_view["value"]} == {f"u:{SVC}", f"u:{ALICE}"}


async def test_select_returns_only_role_definitions(sandbox: OcisSandbox) -> None:
    async with client_for(sandbox) as client:
        drive = await create(client)
        response = await client.get(
            f"{root_path(str(drive['id']))}/permissions",
            params={"$select": "@libre.graph.permissions.roles.allowedValues"},
        )
    assert list(response.json()) == ["@libre.graph.permissions.roles.allowedValues"]


async def test_a_space_admin_that_is_no_member_cannot_even_see_the_members(sandbox: OcisSandbox) -> None:
    drive = sandbox.add_space("Adopted", manager="alice")
    async with client_for(sandbox) as svc:
        listed = await svc.get(f"{root_path(str(drive['id']))}/permissions")
        invited = await svc.post(f"{root_path(str(drive['id']))}/invite", json=invite_body())
    assert (listed.status_code, invited.status_code) == (404, 404)
    assert error(listed)[0] == "itemNotFound"
    assert [p["id"] for p in sandbox.permissions(str(drive["id"]))] == [f"u:{ALICE}"]


async def test_membership_changes_on_a_personal_space_are_unsupported(sandbox: OcisSandbox) -> None:
    drive = sandbox.add_space("Home", drive_type="personal", manager="svc")
    async with client_for(sandbox) as client:
        invited = await client.post(f"{root_path(str(drive['id']))}/invite", json=invite_body())
        listed = await client.get(f"{root_path(str(drive['id']))}/permissions")
    assert error(invited) == ("invalidRequest", "Unsupported space type")
    assert listed.status_code == 200


async def test_a_non_manager_cannot_change_members(sandbox: OcisSandbox) -> None:
    drive = sandbox.add_space("Team", manager="svc")
    root = root_path(str(drive["id"]))
    async with client_for(sandbox) as svc:
        await svc.post(f"{root}/invite", json=invite_body(ALICE, SPACE_EDITOR))
    async with client_for(sandbox, auth=("alice", "alice-app-token")) as alice:
        invited = await alice.post(f"{root}/invite", json=invite_body(BOB))
        patched = await alice.patch(f"{root}/permissions/u:{SVC}", json={"roles": [SPACE_VIEWER]})
        left = await alice.delete(f"{root}/permissions/u:{ALICE}")
    assert [r.status_code for r in (invited, patched, left)] == [403, 403, 403]
    assert error(invited)[0] == "accessDenied"


@pytest.mark.parametrize(
    "change",
    [{"roles": [SPACE_EDITOR]}, {"expirationDateTime": "2999-01-01T00:00:00Z"}],
)
async def test_the_last_permanent_manager_keeps_the_role_until_another_exists(
    sandbox: OcisSandbox, change: dict[str, object]
) -> None:
    async with client_for(sandbox) as client:
        root = root_path(str((await create(client))["id"]))
        refused = await client.patch(f"{root}/permissions/u:{SVC}", json=change)
        await client.post(f"{root}/invite", json=invite_body(TEAM, MANAGER, "group"))
        allowed = await client.patch(f"{root}/permissions/u:{SVC}", json=change)
    assert (refused.status_code, error(refused)[0]) == (403, "accessDenied")
    assert allowed.status_code == 200


async def test_patch_clears_an_expiration_with_null(sandbox: OcisSandbox) -> None:
    async with client_for(sandbox) as client:
        root = root_path(str((await create(client))["id"]))
        await client.post(f"{root}/invite", json={**invite_body(), "expirationDateTime": "2999-01-01T00:00:00Z"})
        cleared = await client.patch(f"{root}/permissions/u:{BOB}", json={"expirationDateTime": None})
    assert "expirationDateTime" not in cleared.json()


async def test_reinviting_existing_member_is_409(sandbox: OcisSandbox) -> None:
    async with client_for(sandbox) as client:
        root = root_path(str((await create(client))["id"]))
        assert (await client.post(f"{root}/invite", json=invite_body())).status_code == 200
        again = await client.post(f"{root}/invite", json=invite_body(role=SPACE_VIEWER))
    assert (again.status_code, error(again)[0]) == (409, "nameAlreadyExists")


# -- Go's decoder ------------------------------------------------------------------------------------------
INNER = Struct("Inner", {"total": "int64"})
TOTAL = "Go struct field Outer.inner.total"
OUTER = Struct("Outer", {"name": "string", "when": "time", "inner": INNER, "items": ArrayOf(INNER), "tags": "strings"})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"NAME": "a", "Inner": {"TOTAL": 3}}', {"name": "a", "inner": {"total": 3}}),
        (b'{"name": "a", "Name": "b"}', {"name": "b"}),
        (b'{"name": null}', {"name": None}),
        (b'  {"name": "a"} trailing', {"name": "a"}),
        (b'{"when": "2026-01-02T03:04:05Z", "tags": ["x"]}', {"when": "2026-01-02T03:04:05Z", "tags": ["x"]}),
        (b'{"items": [{"total": 1}]}', {"items": [{"total": 1}]}),
        (b"null", {}),
    ],
)
def test_go_decoder_accepts_what_go_accepts(raw: bytes, expected: dict[str, object]) -> None:
    assert decode(raw, OUTER) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "EOF"),
        (b'{"name": ', "unexpected EOF"),
        (b"[]", "json: cannot unmarshal array into Go value of type libregraph.Outer"),
        (b'{"size": 1, "name": 2}', 'json: unknown field "size"'),
        (b'{"name": 2, "size": 1}', "json: cannot unmarshal number into Go struct field Outer.name of type string"),
        (
            b'{"inner": {"total": 1e3}}',
            "json: cannot unmarshal number 1e3 into Go struct field Outer.inner.total of type int64",
        ),
        (
            b'{"inner": {"total": 9223372036854775808}}',
            "json: cannot unmarshal number 9223372036854775808 into Go struct field Outer.inner.total of type int64",
        ),
        (b'{"tags": [1]}', "json: cannot unmarshal number into Go struct field Outer.tags of type string"),
        (b'{"items": {}}', "json: cannot unmarshal object into Go struct field Outer.items of type []libregraph.Inner"),
        (b'{"name": NaN}', "invalid character 'N' looking for beginning of value"),
    ],
)
def test_go_decoder_refuses_with_gos_words(raw: bytes, message: str) -> None:
    with pytest.raises(GoJSONError) as info:
        decode(raw, OUTER)
    assert info.value.message == message


def test_go_decoder_refuses_a_time_that_is_not_rfc3339() -> None:
    with pytest.raises(GoJSONError, match="parsing time"):
        decode(b'{"when": "tomorrow"}', OUTER)
