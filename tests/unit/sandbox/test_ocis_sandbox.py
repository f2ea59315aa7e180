"""The oCIS sandbox: drives, their lifecycle, membership, auth and faults, over in-process HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest

from tenantry.sandbox.faults import DroppedConnectionError, FaultRule
from tenantry.sandbox.ocis import OcisSandbox, user_id_for
from tenantry.sandbox.ocis_model import MANAGER, SPACE_EDITOR, SPACE_VIEWER

BOB = "0d7a1f04-5b71-4a7c-9f0e-2c9b3a1e6d10"
CAROL = "6c2e8b55-91d4-4f8a-8a6b-3d5e7f9a0b21"
TEAM = "a41f5c2e-7d3b-4e6a-b8c9-0f1e2d3c4b5a"

Client = httpx.AsyncClient


def _sandbox(**kwargs: object) -> OcisSandbox:
    options: dict[str, object] = {
        "app_tokens": {"svc": "svc-app-token", "alice": "alice-app-token"},
        "bearer_validator": lambda token: "svc" if token == "valid-access-token" else None,
        "space_admins": {"svc"},
        "public_url": "https://cloud.example.test",
        "users": {BOB: "Bob", CAROL: "Carol"},
        "groups": {TEAM: "Team"},
    }
    options.update(kwargs)
    return OcisSandbox(**options)  # type: ignore[arg-type]


def _client(sandbox: OcisSandbox, auth: tuple[str, str] | None = ("svc", "svc-app-token")) -> Client:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox.app), base_url="http://ocis.test", auth=auth)


def _drive_path(drive_id: str) -> str:
    return f"/graph/v1.0/drives/{quote(drive_id, safe='')}"


def _root_path(drive_id: str) -> str:
    return f"/graph/v1beta1/drives/{quote(drive_id, safe='')}/root"


@pytest.fixture
def sandbox() -> OcisSandbox:
    return _sandbox()


@pytest.fixture
async def client(sandbox: OcisSandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(sandbox) as c:
        yield c


async def _create(client: httpx.AsyncClient, name: str = "Acme", **extra: object) -> dict[str, object]:
    response = await client.post("/graph/v1.0/drives", json={"name": name, **extra})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _error(response: httpx.Response) -> tuple[str, str]:
    error = response.json()["error"]
    assert set(error["innererror"]) == {"date", "request-id"}
    return error["code"], error["message"]


# -- create ------------------------------------------------------------------------------------------------
async def test_create_returns_201_with_project_drive_and_creator_as_manager(client: Client) -> None:
    drive = await _create(client, "  Acme Corp  ", description="tenant:42", quota={"total": 5000})

    storage, _, space = str(drive["id"]).partition("$")
    assert storage
    assert space
    assert drive["name"] == "Acme Corp"
    assert drive["driveType"] == "project"
    assert drive["description"] == "tenant:42"
    assert drive["driveAlias"] == "project/acme-corp"
    assert drive["owner"] == {"user": {"id": space, "displayName": ""}}
    assert drive["quota"] == {"total": 5000, "used": 0, "remaining": 5000, "state": "normal"}
    assert drive["webUrl"] == f"https://cloud.example.test/f/{drive['id']}"
    root = drive["root"]
    assert isinstance(root, dict)
    assert root["id"] == drive["id"]
    assert root["webDavUrl"] == f"https://cloud.example.test/dav/spaces/{drive['id']}"
    assert root["permissions"] == [
        {"grantedToIdentities": [{"user": {"id": user_id_for("svc"), "displayName": "svc"}}], "roles": ["manager"]}
    ]


async def test_create_without_quota_uses_default_quota(client: httpx.AsyncClient) -> None:
    drive = await _create(client)
    assert drive["quota"]["total"] == 1_000_000_000  # type: ignore[index]


async def test_create_with_negative_quota_falls_back_to_configured_default() -> None:
    async with _client(_sandbox(default_quota=123)) as client:
        drive = await _create(client, quota={"total": -1})
    assert drive["quota"]["total"] == 123  # type: ignore[index]


async def test_create_above_max_quota_is_rejected() -> None:
    sandbox = _sandbox(max_quota=10)
    async with _client(sandbox) as client:
        response = await client.post("/graph/v1.0/drives", json={"name": "Big", "quota": {"total": 11}})
    assert response.status_code == 400
    assert _error(response) == ("invalidRequest", "requested quota is higher than allowed")
    assert sandbox.spaces() == []


async def test_names_are_not_unique_two_creates_make_two_spaces(
    client: httpx.AsyncClient, sandbox: OcisSandbox
) -> None:
    first = await _create(client, "Same")
    second = await _create(client, "Same")
    assert first["id"] != second["id"]
    assert [s["name"] for s in sandbox.spaces()] == ["Same", "Same"]


async def test_unknown_body_field_is_rejected_as_invalid_schema(
    client: httpx.AsyncClient, sandbox: OcisSandbox
) -> None:
    response = await client.post("/graph/v1.0/drives", json={"name": "Acme", "colour": "blue"})
    assert response.status_code == 400
    assert _error(response) == ("invalidRequest", "invalid body schema definition")
    assert sandbox.spaces() == []


@pytest.mark.parametrize("name", ["acme.com", "a/b", "a\\b", "a:b", "a?b", "a*b", 'a"b', "a>b", "a<b", "a|b"])
async def test_forbidden_characters_in_name_are_rejected(client: httpx.AsyncClient, name: str) -> None:
    response = await client.post("/graph/v1.0/drives", json={"name": name})
    assert response.status_code == 400
    code, message = _error(response)
    assert code == "invalidRequest"
    assert message.startswith("invalid spacename: ")


@pytest.mark.parametrize("name", ["", "   ", "x" * 256])
async def test_empty_or_overlong_name_is_rejected(client: httpx.AsyncClient, name: str) -> None:
    response = await client.post("/graph/v1.0/drives", json={"name": name})
    assert response.status_code == 400
    assert _error(response)[1].startswith("invalid spacename: ")


async def test_personal_drive_type_cannot_be_created(client: httpx.AsyncClient) -> None:
    response = await client.post("/graph/v1.0/drives", json={"name": "Mine", "driveType": "personal"})
    assert response.status_code == 400
    assert _error(response) == ("invalidRequest", "drives of this type cannot be created via this api")


# -- auth --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("auth", [None, ("svc", "wrong-token"), ("nobody", "svc-app-token")])
async def test_missing_or_wrong_credentials_get_401_with_empty_body(
    sandbox: OcisSandbox, auth: tuple[str, str] | None
) -> None:
    async with _client(sandbox, auth=auth) as client:
        response = await client.get("/graph/v1.0/drives")
    assert response.status_code == 401
    assert response.content == b""


async def test_bearer_token_is_mapped_to_user_by_validator(sandbox: OcisSandbox) -> None:
    async with _client(sandbox, auth=None) as client:
        ok = await client.get("/graph/v1.0/me", headers={"Authorization": "Bearer valid-access-token"})
        rejected = await client.get("/graph/v1.0/drives", headers={"Authorization": "Bearer forged"})
    assert ok.status_code == 200
    assert ok.json()["id"] == user_id_for("svc")
    assert rejected.status_code == 401
    assert rejected.content == b""


async def test_plain_user_cannot_create_project_space(sandbox: OcisSandbox) -> None:
    async with _client(sandbox, auth=("alice", "alice-app-token")) as client:
        response = await client.post("/graph/v1.0/drives", json={"name": "Mine"})
    assert response.status_code == 403
    assert _error(response) == ("notAllowed", "insufficient permissions to create a space.")


async def test_plain_user_sees_only_spaces_they_belong_to(client: Client, sandbox: OcisSandbox) -> None:
    hidden = await _create(client, "Hidden")
    shared = await _create(client, "Shared")
    invite = {"recipients": [{"objectId": user_id_for("alice")}], "roles": [SPACE_VIEWER]}
    assert (await client.post(f"{_root_path(str(shared['id']))}/invite", json=invite)).status_code == 200
    async with _client(sandbox, auth=("alice", "alice-app-token")) as alice:
        listed = (await alice.get("/graph/v1.0/drives")).json()["value"]
        hidden_get = await alice.get(_drive_path(str(hidden["id"])))
    assert [d["id"] for d in listed] == [shared["id"]]
    assert hidden_get.status_code == 404


# -- list and get ------------------------------------------------------------------------------------------
async def test_filter_on_drive_type_and_id_is_honoured(client: Client, sandbox: OcisSandbox) -> None:
    first = await _create(client, "One")
    await _create(client, "Two")
    sandbox.add_space("Home", drive_type="personal")
    by_type = await client.get("/graph/v1.0/drives", params={"$filter": "driveType eq 'project'"})
    by_id = await client.get("/graph/v1.0/drives", params={"$filter": f"id eq '{first['id']}'"})
    assert [d["name"] for d in by_type.json()["value"]] == ["One", "Two"]
    assert [d["id"] for d in by_id.json()["value"]] == [first["id"]]


async def test_filter_on_name_is_silently_ignored(client: httpx.AsyncClient) -> None:
    await _create(client, "One")
    await _create(client, "Two")
    response = await client.get("/graph/v1.0/drives", params={"$filter": "name eq 'One'"})
    assert response.status_code == 200
    assert [d["name"] for d in response.json()["value"]] == ["One", "Two"]


@pytest.mark.parametrize(
    "expression",
    [
        "driveType eq 'project' and name eq 'x'",
        "driveType ne 'personal'",
        "contains(name, 'x')",
    ],
)
async def test_unsupported_filter_answers_501(client: httpx.AsyncClient, expression: str) -> None:
    response = await client.get("/graph/v1.0/drives", params={"$filter": expression})
    assert response.status_code == 501
    assert _error(response)[0] == "notSupported"


async def test_orderby_name_desc_sorts_and_unknown_orderby_is_400(client: httpx.AsyncClient) -> None:
    for name in ("Beta", "Alpha", "Gamma"):
        await _create(client, name)
    ordered = await client.get("/graph/v1.0/drives", params={"$orderby": "name desc"})
    rejected = await client.get("/graph/v1.0/drives", params={"$orderby": "quota"})
    assert [d["name"] for d in ordered.json()["value"]] == ["Gamma", "Beta", "Alpha"]
    assert rejected.status_code == 400
    assert _error(rejected)[0] == "invalidRequest"


async def test_get_round_trips_escaped_dollar_in_id(client: httpx.AsyncClient) -> None:
    drive = await _create(client)
    assert "%24" in _drive_path(str(drive["id"]))
    response = await client.get(_drive_path(str(drive["id"])))
    assert response.status_code == 200
    assert response.json()["id"] == drive["id"]


async def test_get_unknown_drive_is_404_drive_not_found(client: httpx.AsyncClient) -> None:
    response = await client.get(_drive_path("storage-users-1$missing"))
    assert response.status_code == 404
    assert _error(response) == ("itemNotFound", "drive not found")


async def test_beta_listing_shows_unified_roles_in_granted_to_v2(client: httpx.AsyncClient) -> None:
    await _create(client)
    drive = (await client.get("/graph/v1beta1/drives")).json()["value"][0]
    assert drive["root"]["permissions"] == [
        {
            "id": f"u:{user_id_for('svc')}",
            "roles": [MANAGER],
            "grantedToV2": {"user": {"id": user_id_for("svc"), "displayName": "svc"}},
        }
    ]


# -- patch, disable, restore, purge -------------------------------------------------------------------------
async def test_patch_updates_name_description_alias_and_quota(client: httpx.AsyncClient) -> None:
    drive = await _create(client)
    response = await client.patch(
        _drive_path(str(drive["id"])),
        json={
            "name": "Renamed",
            "description": "tenant:7",
            "driveAlias": "project/tenant-7",
            "quota": {"total": 42},
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Renamed"
    assert body["description"] == "tenant:7"
    assert body["driveAlias"] == "project/tenant-7"
    assert body["quota"]["total"] == 42
    assert body["root"]["eTag"] != drive["root"]["eTag"]  # type: ignore[index]


async def test_patch_rejects_unknown_field_and_bad_name(client: httpx.AsyncClient) -> None:
    drive = await _create(client)
    unknown = await client.patch(_drive_path(str(drive["id"])), json={"size": 1})
    bad_name = await client.patch(_drive_path(str(drive["id"])), json={"name": "a.b"})
    assert _error(unknown) == ("invalidRequest", "invalid body schema definition")
    assert bad_name.status_code == 400
    assert (await client.get(_drive_path(str(drive["id"])))).json()["name"] == "Acme"


async def test_manager_without_quota_permission_cannot_change_quota(sandbox: OcisSandbox) -> None:
    drive = sandbox.add_space("Team", description="d", manager="alice")
    async with _client(sandbox, auth=("alice", "alice-app-token")) as alice:
        quota = await alice.patch(_drive_path(str(drive["id"])), json={"quota": {"total": 1}})
        rename = await alice.patch(_drive_path(str(drive["id"])), json={"name": "Team B"})
    assert quota.status_code == 403
    assert _error(quota) == ("notAllowed", "user is not allowed to set the space quota")
    assert rename.status_code == 200


async def test_disable_keeps_space_listed_as_trashed_and_restore_reenables(
    client: httpx.AsyncClient,
) -> None:
    drive = await _create(client, description="tenant:1")
    path = _drive_path(str(drive["id"]))
    assert (await client.delete(path)).status_code == 204
    listed = (await client.get("/graph/v1.0/drives")).json()["value"]
    assert listed[0]["root"]["deleted"] == {"state": "trashed"}
    assert "description" not in listed[0]

    restored = await client.patch(path, json={}, headers={"Restore": "T"})
    assert restored.status_code == 200
    assert "deleted" not in restored.json()["root"]
    assert restored.json()["description"] == "tenant:1"


async def test_second_disable_of_disabled_space_is_204(client: Client, sandbox: OcisSandbox) -> None:
    drive = await _create(client)
    path = _drive_path(str(drive["id"]))
    assert (await client.delete(path)).status_code == 204
    assert (await client.delete(path)).status_code == 204
    assert sandbox.get_space(str(drive["id"])) is not None


async def test_purge_enabled_space_is_400_and_keeps_it(client: Client, sandbox: OcisSandbox) -> None:
    drive = await _create(client)
    response = await client.delete(_drive_path(str(drive["id"])), headers={"Purge": "T"})
    assert response.status_code == 400
    code, message = _error(response)
    assert code == "invalidRequest"
    assert message.endswith("can't purge enabled space")
    assert sandbox.get_space(str(drive["id"])) is not None


@pytest.mark.parametrize("header", ["T", "true", "1", "TRUE"])
async def test_purge_disabled_space_removes_it(client: httpx.AsyncClient, sandbox: OcisSandbox, header: str) -> None:
    drive = await _create(client)
    path = _drive_path(str(drive["id"]))
    await client.delete(path)
    assert (await client.delete(path, headers={"Purge": header})).status_code == 204
    assert sandbox.get_space(str(drive["id"])) is None
    assert (await client.get(path)).status_code == 404
    assert (await client.delete(path)).status_code == 404


async def test_out_of_band_helpers_create_disable_and_purge(sandbox: OcisSandbox) -> None:
    drive = sandbox.add_space("Drift", description="tenant:9", quota=10)
    sandbox.set_usage(str(drive["id"]), 8)
    assert sandbox.get_space(str(drive["id"]))["quota"]["state"] == "nearing"  # type: ignore[index]
    sandbox.disable_space(str(drive["id"]))
    assert sandbox.spaces()[0]["root"]["deleted"] == {"state": "trashed"}
    sandbox.delete_space(str(drive["id"]))
    assert sandbox.spaces() == []


# -- membership ------------------------------------------------------------------------------------------
async def test_invite_list_patch_delete_member(client: httpx.AsyncClient, sandbox: OcisSandbox) -> None:
    drive = await _create(client)
    root = _root_path(str(drive["id"]))
    invite = await client.post(
        f"{root}/invite",
        json={"recipients": [{"@libre.graph.recipient.type": "user", "objectId": BOB}], "roles": [SPACE_EDITOR]},
    )
    assert invite.status_code == 200
    assert invite.json() == {
        "value": [
            {"id": f"u:{BOB}", "roles": [SPACE_EDITOR], "grantedToV2": {"user": {"id": BOB, "displayName": "Bob"}}},
        ]
    }

    listed = (await client.get(f"{root}/permissions")).json()
    assert {r["id"] for r in listed["@libre.graph.permissions.roles.allowedValues"]} == {
        SPACE_VIEWER,
        SPACE_EDITOR,
        MANAGER,
    }
    assert {(p["id"], p["roles"][0]) for p in listed["value"]} == {
        (f"u:{user_id_for('svc')}", MANAGER),
        (f"u:{BOB}", SPACE_EDITOR),
    }

    patched = await client.patch(f"{root}/permissions/u:{BOB}", json={"roles": [SPACE_VIEWER]})
    assert patched.status_code == 200
    assert patched.json()["roles"] == [SPACE_VIEWER]

    assert (await client.delete(f"{root}/permissions/u:{BOB}")).status_code == 204
    assert [p["id"] for p in sandbox.permissions(str(drive["id"]))] == [f"u:{user_id_for('svc')}"]
    assert (await client.delete(f"{root}/permissions/u:{BOB}")).status_code == 404


async def test_group_invite_gets_g_prefixed_permission_id(client: httpx.AsyncClient) -> None:
    drive = await _create(client)
    response = await client.post(
        f"{_root_path(str(drive['id']))}/invite",
        json={"recipients": [{"@libre.graph.recipient.type": "group", "objectId": TEAM}], "roles": [MANAGER]},
    )
    assert response.json()["value"][0]["id"] == f"g:{TEAM}"
    assert response.json()["value"][0]["grantedToV2"] == {"group": {"id": TEAM, "displayName": "Team"}}


async def test_reinviting_existing_member_is_409(client: httpx.AsyncClient) -> None:
    drive = await _create(client)
    body = {"recipients": [{"objectId": BOB}], "roles": [SPACE_VIEWER]}
    assert (await client.post(f"{_root_path(str(drive['id']))}/invite", json=body)).status_code == 200
    again = await client.post(f"{_root_path(str(drive['id']))}/invite", json=body)
    assert again.status_code == 409
    assert _error(again)[0] == "nameAlreadyExists"


@pytest.mark.parametrize(
    "body",
    [
        {"recipients": [], "roles": [SPACE_VIEWER]},
        {"recipients": [{"objectId": BOB}, {"objectId": CAROL}], "roles": [SPACE_VIEWER]},
        {"recipients": [{"objectId": BOB}], "roles": [SPACE_VIEWER, SPACE_EDITOR]},
        {"recipients": [{"objectId": BOB}], "roles": []},
        {"recipients": [{"objectId": "unknown-user"}], "roles": [SPACE_VIEWER]},
        {"recipients": [{"objectId": BOB, "@libre.graph.recipient.type": "robot"}], "roles": [SPACE_VIEWER]},
        {"recipients": [{"objectId": BOB}], "roles": ["b1e2218d-eef8-4d4c-b82d-0f1a1b48f3b5"]},
        {"recipients": [{"objectId": BOB}], "roles": [SPACE_VIEWER], "expirationDateTime": "2001-01-01T00:00:00Z"},
    ],
)
async def test_invalid_invite_is_400_and_adds_nobody(
    client: httpx.AsyncClient, sandbox: OcisSandbox, body: dict[str, object]
) -> None:
    drive = await _create(client)
    response = await client.post(f"{_root_path(str(drive['id']))}/invite", json=body)
    assert response.status_code == 400
    assert _error(response)[0] == "invalidRequest"
    assert len(sandbox.permissions(str(drive["id"]))) == 1


async def test_membership_on_non_project_space_is_unsupported(client: httpx.AsyncClient, sandbox: OcisSandbox) -> None:
    drive = sandbox.add_space("Home", drive_type="personal")
    response = await client.post(
        f"{_root_path(str(drive['id']))}/invite", json={"recipients": [{"objectId": BOB}], "roles": [SPACE_VIEWER]}
    )
    assert response.status_code == 400
    assert _error(response) == ("invalidRequest", "unsupported space type")


async def test_space_admin_who_is_not_manager_cannot_manage_members(
    client: httpx.AsyncClient, sandbox: OcisSandbox
) -> None:
    drive = sandbox.add_space("Adopted")
    response = await client.post(
        f"{_root_path(str(drive['id']))}/invite", json={"recipients": [{"objectId": BOB}], "roles": [SPACE_VIEWER]}
    )
    assert response.status_code == 403
    assert sandbox.permissions(str(drive["id"])) == []


async def test_select_returns_only_role_definitions(client: httpx.AsyncClient) -> None:
    drive = await _create(client)
    response = await client.get(
        f"{_root_path(str(drive['id']))}/permissions",
        params={"$select": "@libre.graph.permissions.roles.allowedValues"},
    )
    assert list(response.json()) == ["@libre.graph.permissions.roles.allowedValues"]


# -- faults ------------------------------------------------------------------------------------------------
async def test_injected_status_fault_applies_once_then_clears(client: httpx.AsyncClient, sandbox: OcisSandbox) -> None:
    sandbox.controls.fail(r"^/graph/v1\.0/drives$", 429, method="POST", times=1, retry_after=3)
    throttled = await client.post("/graph/v1.0/drives", json={"name": "Acme"})
    created = await client.post("/graph/v1.0/drives", json={"name": "Acme"})
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "3"
    assert created.status_code == 201
    assert len(sandbox.spaces()) == 1
    assert [r.status for r in sandbox.controls.requests("POST")] == [429, 201]


async def test_injected_drop_breaks_the_response(client: httpx.AsyncClient, sandbox: OcisSandbox) -> None:
    sandbox.controls.add_fault(FaultRule(kind="drop", path=r"^/graph/v1\.0/drives$", method="GET", times=1))
    with pytest.raises(DroppedConnectionError):
        await client.get("/graph/v1.0/drives")
    assert (await client.get("/graph/v1.0/drives")).status_code == 200


async def test_request_log_redacts_credentials(client: httpx.AsyncClient, sandbox: OcisSandbox) -> None:
    await client.get("/graph/v1.0/drives")
    logged = sandbox.controls.requests("GET", r"/drives$")
    assert logged[0].headers["authorization"] == "<redacted>"
