"""The oCIS sandbox's drives: shapes, lifecycle, who sees and changes what, auth and faults, over in-process HTTP.

What oCIS itself asserts about project spaces is held in tests/conformance/ocis (which also runs here, against
this sandbox); these tests pin what only the sandbox can show: exact shapes, configuration, helpers, faults.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest

from tenantry.sandbox.faults import DroppedConnectionError, FaultRule
from tenantry.sandbox.ocis import OcisSandbox, user_id_for
from tenantry.sandbox.ocis_model import MANAGER
from tests.support.ocis_sandbox import Client, client_for, create, drive_path, error, make_sandbox


@pytest.fixture
def sandbox() -> OcisSandbox:
    return make_sandbox()


@pytest.fixture
async def client(sandbox: OcisSandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(sandbox) as c:
        yield c


# -- create ------------------------------------------------------------------------------------------------
async def test_create_returns_201_with_project_drive_and_creator_as_manager(client: Client) -> None:
    drive = await create(client, "  Acme Corp  ", description="tenant:42", quota={"total": 5000})

    storage, _, space = str(drive["id"]).partition("$")
    assert (storage, drive["name"], drive["driveType"]) == ("storage-users-1", "Acme Corp", "project")
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


@pytest.mark.parametrize(
    ("name", "alias"),
    [("Acme  Corp", "project/acme--corp"), ("Ünïcode Space", "project/ünïcode-space"), ("a\tb", "project/a\tb")],
)
async def test_alias_turns_each_space_into_a_dash_and_lowers_the_case(client: Client, name: str, alias: str) -> None:
    assert (await create(client, name))["driveAlias"] == alias


async def test_a_given_alias_is_kept_and_an_empty_one_means_the_default(client: Client) -> None:
    assert (await create(client, "Acme", driveAlias="project/tenant-1"))["driveAlias"] == "project/tenant-1"
    assert (await create(client, "Acme", driveAlias=""))["driveAlias"] == "project/acme"


async def test_quota_on_create_negative_means_the_configured_default_and_zero_unlimited() -> None:
    async with client_for(make_sandbox(default_quota=123, free_bytes=10**9)) as client:
        absent = await create(client)
        negative = await create(client, quota={"total": -1})
        unlimited = await create(client, quota={"total": 0})
    assert absent["quota"]["total"] == negative["quota"]["total"] == 123  # type: ignore[index]
    assert unlimited["quota"] == {"total": 0, "used": 0, "remaining": 10**9, "state": "normal"}


async def test_create_above_max_quota_is_refused_by_the_storage(sandbox: OcisSandbox) -> None:
    async with client_for(make_sandbox(max_quota=10)) as client:
        response = await client.post("/graph/v1.0/drives", json={"name": "Big", "quota": {"total": 11}})
    assert response.status_code == 400
    assert error(response) == (
        "invalidRequest",
        "Error: bad request: decompsedFS: requested quota is higher than allowed",
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Invalid spacename: spacename must not be empty"),
        ("   ", "Invalid spacename: spacename must not be empty"),
        ("x" * 256, "Invalid spacename: spacename must be smaller than 255"),
        ("é" * 128, "Invalid spacename: spacename must be smaller than 255"),
        ("acme.com", 'Invalid spacename: spacenames must not contain [/ \\ . : ? * " > < |]'),
        ("a|b", 'Invalid spacename: spacenames must not contain [/ \\ . : ? * " > < |]'),
    ],
)
async def test_invalid_name_on_create_is_invalid_request(client: Client, name: str, message: str) -> None:
    response = await client.post("/graph/v1.0/drives", json={"name": name})
    assert response.status_code == 400
    assert error(response) == ("invalidRequest", message)


@pytest.mark.parametrize(
    "body",
    [
        b'{"Name": "Acme"}',
        b"{}",
        b"[]",
        b"null",
        b"",
        b'{"name": "Acme", "colour": "blue"}',
        b'{"name": "Acme", "quota": {"total": 1.5}}',
        b'{"name": "Acme", "quota": {"total": "5"}}',
        b'{"name": 5}',
    ],
)
async def test_create_body_is_decoded_strictly_and_needs_the_key_name(client: Client, body: bytes) -> None:
    response = await client.post("/graph/v1.0/drives", content=body)
    assert response.status_code == 400
    assert error(response) == ("invalidRequest", "Invalid body schema definition")


async def test_create_matches_other_keys_case_insensitively(client: Client) -> None:
    drive = await create(client, "Acme", DESCRIPTION="tenant:1", Quota={"TOTAL": 77})
    assert (drive["description"], drive["quota"]["total"]) == ("tenant:1", 77)  # type: ignore[index]


async def test_personal_drive_type_cannot_be_created(client: Client) -> None:
    response = await client.post("/graph/v1.0/drives", json={"name": "Mine", "driveType": "personal"})
    assert error(response) == ("invalidRequest", "Drives of this type cannot be created via this api")


async def test_plain_user_cannot_create_project_space(sandbox: OcisSandbox) -> None:
    async with client_for(sandbox, auth=("alice", "alice-app-token")) as alice:
        response = await alice.post("/graph/v1.0/drives", json={"name": "Mine"})
    assert response.status_code == 403
    assert error(response) == ("notAllowed", "Insufficient permissions to create a space.")


# -- auth and routing --------------------------------------------------------------------------------------
@pytest.mark.parametrize("auth", [None, ("svc", "wrong-token"), ("nobody", "svc-app-token")])
async def test_missing_or_wrong_credentials_get_401_with_empty_body(
    sandbox: OcisSandbox, auth: tuple[str, str] | None
) -> None:
    async with client_for(sandbox, auth=auth) as client:
        response = await client.get("/graph/v1.0/drives")
    assert (response.status_code, response.content) == (401, b"")


async def test_bearer_token_is_mapped_to_user_by_validator(sandbox: OcisSandbox) -> None:
    async with client_for(sandbox, auth=None) as client:
        ok = await client.get("/graph/v1.0/me", headers={"Authorization": "Bearer valid-access-token"})
        rejected = await client.get("/graph/v1.0/drives", headers={"Authorization": "Bearer forged"})
    assert ok.json()["id"] == user_id_for("svc")
    assert (rejected.status_code, rejected.content) == (401, b"")


async def test_trailing_slash_is_stripped_and_unknown_routes_answer_like_chi(client: Client) -> None:
    drive = await create(client)
    assert (await client.get(drive_path(str(drive["id"])) + "/")).status_code == 200
    unknown = await client.get("/graph/v1.0/nothing")
    assert (unknown.status_code, unknown.text) == (404, "404 page not found\n")
    assert (await client.put(drive_path(str(drive["id"])))).status_code == 405
    assert (await client.patch(f"/graph/v1beta1/drives/{quote(str(drive['id']), safe='')}", json={})).status_code == 404


# -- listing -----------------------------------------------------------------------------------------------
async def test_beta_listing_shows_unified_roles_in_granted_to_v2(client: Client) -> None:
    await create(client)
    drive = (await client.get("/graph/v1beta1/me/drives")).json()["value"][0]
    assert drive["root"]["permissions"] == [
        {
            "id": f"u:{user_id_for('svc')}",
            "roles": [MANAGER],
            "grantedToV2": {"user": {"id": user_id_for("svc"), "displayName": "svc"}},
        }
    ]


async def test_space_admin_lists_every_space_on_drives_but_only_its_own_on_me_drives(
    client: Client, sandbox: OcisSandbox
) -> None:
    own = await create(client, "Own")
    other = sandbox.add_space("Other", manager="alice")
    everything = (await client.get("/graph/v1.0/drives")).json()["value"]
    mine = (await client.get("/graph/v1.0/me/drives")).json()["value"]
    assert {d["id"] for d in everything} == {own["id"], other["id"]}
    assert [d["id"] for d in mine] == [own["id"]]


async def test_orderby_name_is_case_insensitive_and_several_items_leave_the_order(client: Client) -> None:
    for name in ("beta", "Alpha", "Gamma"):
        await create(client, name)
    by_name = await client.get("/graph/v1.0/drives", params={"$orderby": "name DESC"})
    several = await client.get("/graph/v1.0/drives", params={"$orderby": "name desc,size"})
    assert [d["name"] for d in by_name.json()["value"]] == ["Gamma", "beta", "Alpha"]
    assert [d["name"] for d in several.json()["value"]] == ["beta", "Alpha", "Gamma"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("foo=1", "Query parameter 'foo' is not supported. Cause: Query parameter 'foo' is not supported"),
        (
            "$filter=driveType eq 'project'&$filter=id eq 'x'",
            "Query parameter '$filter' cannot be specified more than once. "
            "Cause: Query parameter '$filter' cannot be specified more than once",
        ),
        ("$top=ten", 'Strconv.Atoi: parsing "ten": invalid syntax'),
        ("$count=yes", 'Strconv.ParseBool: parsing "yes": invalid syntax'),
        ("$format=json", "Format is not supported"),
        ("$filter=name", "Value must be a boolean expression"),
        ("$orderby=size", "We do not support <size> as a order parameter"),
    ],
)
async def test_listing_query_errors_use_godatas_words(client: Client, query: str, message: str) -> None:
    response = await client.get(f"/graph/v1.0/me/drives?{query}")
    assert response.status_code == 400
    assert error(response) == ("invalidRequest", message)


async def test_a_parse_error_wins_over_an_unsupported_filter(client: Client) -> None:
    response = await client.get("/graph/v1.0/drives", params={"$filter": "driveType ne 'x'", "$top": "x"})
    assert response.status_code == 400
    unsupported = await client.get("/graph/v1.0/drives", params={"$filter": "driveType ne 'x'"})
    assert error(unsupported) == ("notSupported", "Unsupported filter operand: ne")


# -- patch, quota, disable, restore, purge -----------------------------------------------------------------
async def test_patch_errors_use_graphs_words(client: Client) -> None:
    path = drive_path(str((await create(client))["id"]))
    unknown = await client.patch(path, json={"size": 1})
    mistyped = await client.patch(path, json={"quota": {"total": "5"}})
    blank = await client.patch(path, json={"name": "  "})
    assert error(unknown) == ("invalidRequest", 'Invalid request body: error: json: unknown field "size"')
    assert error(mistyped) == (
        "invalidRequest",
        "Invalid request body: error: json: cannot unmarshal string into Go struct field "
        "DriveUpdate.quota.total of type int64",
    )
    assert (blank.status_code, error(blank)) == (400, ("generalException", "Spacename must not be empty"))


async def test_patch_with_an_empty_name_changes_nothing_else(client: Client) -> None:
    drive = await create(client)
    response = await client.patch(drive_path(str(drive["id"])), json={"name": "", "description": "new"})
    assert (response.json()["name"], response.json()["description"]) == ("Acme", "new")


async def test_an_empty_description_is_left_out_of_the_drive(client: Client) -> None:
    drive = await create(client, description="old")
    response = await client.patch(drive_path(str(drive["id"])), json={"description": ""})
    assert "description" not in response.json()


@pytest.mark.parametrize("total", [-1, 0])
async def test_unlimited_quota_reports_free_disk_space_as_remaining(total: int) -> None:
    async with client_for(make_sandbox(free_bytes=5000)) as client:
        drive = await create(client, quota={"total": 10})
        response = await client.patch(drive_path(str(drive["id"])), json={"quota": {"total": total}})
    assert response.json()["quota"] == {"total": 0, "used": 0, "remaining": 5000, "state": "normal"}


async def test_with_a_max_quota_minus_one_is_refused_and_zero_means_the_maximum() -> None:
    async with client_for(make_sandbox(max_quota=100)) as client:
        path = drive_path(str((await create(client, quota={"total": 10}))["id"]))
        refused = await client.patch(path, json={"quota": {"total": -1}})
        too_big = await client.patch(path, json={"quota": {"total": 101}})
        zero = await client.patch(path, json={"quota": {"total": 0}})
    message = ("notAllowed", "DecompsedFS: requested quota is higher than allowed")
    assert (refused.status_code, error(refused)) == (400, message)
    assert (too_big.status_code, error(too_big)) == (400, message)
    assert zero.json()["quota"]["total"] == 100


@pytest.mark.parametrize(("used", "state"), [(75, "normal"), (76, "nearing"), (90, "nearing"), (99, "critical")])
async def test_quota_state_thresholds_include_their_bound(sandbox: OcisSandbox, used: int, state: str) -> None:
    drive = sandbox.add_space("Drift", quota=100)
    sandbox.set_usage(str(drive["id"]), used)
    assert sandbox.get_space(str(drive["id"]))["quota"]["state"] == state  # type: ignore[index]
    sandbox.set_usage(str(drive["id"]), 100)
    assert sandbox.get_space(str(drive["id"]))["quota"] == {  # type: ignore[index]
        "total": 100,
        "used": 100,
        "remaining": 0,
        "state": "exceeded",
    }


async def test_a_disabled_space_keeps_its_description_and_shows_only_its_quota_total(client: Client) -> None:
    drive = await create(client, description="tenant:1", quota={"total": 15})
    await client.delete(drive_path(str(drive["id"])))
    listed = (await client.get("/graph/v1.0/me/drives")).json()["value"][0]
    assert listed["root"]["deleted"] == {"state": "trashed"}
    assert (listed["description"], listed["quota"]) == ("tenant:1", {"total": 15})


async def test_a_disabled_unlimited_space_shows_no_quota_total(client: Client) -> None:
    drive = await create(client)
    await client.patch(drive_path(str(drive["id"])), json={"quota": {"total": -1}})
    await client.delete(drive_path(str(drive["id"])))
    assert (await client.get(drive_path(str(drive["id"])))).json()["quota"] == {}


async def test_space_admin_restores_and_purges_a_space_it_is_not_member_of(sandbox: OcisSandbox) -> None:
    drive = sandbox.add_space("Other", manager="alice")
    path = drive_path(str(drive["id"]))
    async with client_for(sandbox) as svc:
        nothing = await svc.patch(path, json={})
        disabled = await svc.delete(path)
        restored = await svc.patch(path, json={}, headers={"Restore": "true"})
        await svc.delete(path)
        purged = await svc.delete(path, headers={"Purge": "1"})
    assert nothing.status_code == 404  # an update with no change needs at least read access
    assert (disabled.status_code, restored.status_code, purged.status_code) == (204, 200, 204)
    assert sandbox.spaces() == []


async def test_out_of_band_helpers_create_disable_and_purge(sandbox: OcisSandbox) -> None:
    drive = sandbox.add_space("Drift", description="tenant:9", quota=10)
    sandbox.set_usage(str(drive["id"]), 8)
    assert sandbox.get_space(str(drive["id"]))["quota"]["state"] == "nearing"  # type: ignore[index]
    sandbox.disable_space(str(drive["id"]))
    assert sandbox.spaces()[0]["root"]["deleted"] == {"state": "trashed"}
    sandbox.delete_space(str(drive["id"]))
    assert sandbox.spaces() == []


# -- faults ------------------------------------------------------------------------------------------------
async def test_injected_status_fault_applies_once_then_clears(client: Client, sandbox: OcisSandbox) -> None:
    sandbox.controls.fail(r"^/graph/v1\.0/drives$", 429, method="POST", times=1, retry_after=3)
    throttled = await client.post("/graph/v1.0/drives", json={"name": "Acme"})
    created = await client.post("/graph/v1.0/drives", json={"name": "Acme"})
    assert (throttled.status_code, throttled.headers["retry-after"]) == (429, "3")
    assert created.status_code == 201
    assert len(sandbox.spaces()) == 1
    assert [r.status for r in sandbox.controls.requests("POST")] == [429, 201]


async def test_injected_drop_breaks_the_response(client: Client, sandbox: OcisSandbox) -> None:
    sandbox.controls.add_fault(FaultRule(kind="drop", path=r"^/graph/v1\.0/drives$", method="GET", times=1))
    with pytest.raises(DroppedConnectionError):
        await client.get("/graph/v1.0/drives")
    assert (await client.get("/graph/v1.0/drives")).status_code == 200


async def test_request_log_redacts_credentials(client: Client, sandbox: OcisSandbox) -> None:
    await client.get("/graph/v1.0/drives")
    logged = sandbox.controls.requests("GET", r"/drives$")
    assert logged[0].headers["authorization"] == "<redacted>"
