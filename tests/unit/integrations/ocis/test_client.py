"""OcisClient: the requests each method sends, how answers are parsed and how errors are mapped."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tenantry.integrations.oauth import ClientCredentialsAuth
from tenantry.integrations.ocis.client import OcisClient
from tenantry.integrations.ocis.errors import (
    OcisAuthError,
    OcisConflictError,
    OcisConnectionError,
    OcisForbiddenError,
    OcisInvalidRequestError,
    OcisNotFoundError,
    OcisNotSupportedError,
    OcisRateLimitError,
    OcisResponseError,
    OcisServerError,
    OcisTimeoutError,
)

BASE = "https://files.test"
DRIVE_ID = "storage-users-1$535aa42d-0000-4000-8000-000000000001"
ESCAPED = "storage-users-1%24535aa42d-0000-4000-8000-000000000001"


def drive_json(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": DRIVE_ID,
        "name": "Marketing",
        "driveType": "project",
        "driveAlias": "project/marketing",
        "description": "Team files",
        "owner": {"user": {"id": "u1"}},
        "quota": {"total": 5368709120, "used": 10, "remaining": 5368709110, "state": "normal"},
        "root": {"id": DRIVE_ID, "webDavUrl": f"{BASE}/dav/spaces/{DRIVE_ID}"},
        "webUrl": f"{BASE}/f/{DRIVE_ID}",
        "lastModifiedDateTime": "2024-01-01T00:00:00Z",
        "special": [],
    }
    body.update(overrides)
    return body


class Recorder:
    """A MockTransport handler that records requests and answers with a fixed response."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response]) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def last_json(self) -> Any:
        return json.loads(self.last.content)


def client_for(
    answer: Callable[[httpx.Request], httpx.Response], auth: httpx.Auth | None = None
) -> tuple[OcisClient, Recorder]:
    recorder = Recorder(answer)
    http = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    return OcisClient(http, BASE + "/", auth or httpx.BasicAuth("svc-provisioner", "app-token")), recorder


def ok(status: int = 200, body: Any = None) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _r: httpx.Response(status, json=body) if body is not None else httpx.Response(status)


async def test_create_drive_posts_name_description_and_quota_and_parses_the_drive() -> None:
    client, rec = client_for(ok(201, drive_json()))
    drive = await client.create_drive("Marketing", description="Team files", quota_total=5368709120)
    assert (rec.last.method, rec.last.url.path) == ("POST", "/graph/v1.0/drives")
    assert rec.last_json() == {"name": "Marketing", "description": "Team files", "quota": {"total": 5368709120}}
    assert drive.id == DRIVE_ID
    assert drive.drive_type == "project"
    assert drive.quota_total == 5368709120
    assert drive.web_url == f"{BASE}/f/{DRIVE_ID}"
    assert drive.disabled is False


async def test_create_drive_sends_only_the_name_when_nothing_else_is_given() -> None:
    client, rec = client_for(ok(201, drive_json()))
    await client.create_drive("Venus")
    assert rec.last_json() == {"name": "Venus"}


async def test_create_drive_sends_the_alias_when_given() -> None:
    client, rec = client_for(ok(201, drive_json()))
    await client.create_drive("Venus", drive_alias="project/venus")
    assert rec.last_json() == {"name": "Venus", "driveAlias": "project/venus"}


async def test_list_project_drives_filters_on_the_project_type() -> None:
    client, rec = client_for(ok(200, {"value": [drive_json(), drive_json(id="s$2", name="Other")]}))
    drives = await client.list_project_drives()
    assert rec.last.url.path == "/graph/v1.0/drives"
    assert rec.last.url.params["$filter"] == "driveType eq 'project'"
    assert [d.id for d in drives] == [DRIVE_ID, "s$2"]


@pytest.mark.parametrize("body", ["null", '{"value": null}', '{"value": []}', "{}"])
async def test_list_project_drives_reads_a_null_or_empty_answer_as_no_drives(body: str) -> None:
    client, _ = client_for(
        lambda _r: httpx.Response(200, content=body.encode(), headers={"Content-Type": "application/json"})
    )
    assert await client.list_project_drives() == []


async def test_get_drive_escapes_the_dollar_in_the_id() -> None:
    client, rec = client_for(ok(200, drive_json()))
    drive = await client.get_drive(DRIVE_ID)
    assert rec.last.url.raw_path.decode() == f"/graph/v1.0/drives/{ESCAPED}"
    assert drive.name == "Marketing"


async def test_a_drive_with_a_trashed_root_is_disabled() -> None:
    client, _ = client_for(ok(200, drive_json(root={"id": DRIVE_ID, "deleted": {"state": "trashed"}})))
    assert (await client.get_drive(DRIVE_ID)).disabled is True


async def test_unknown_fields_are_ignored_and_missing_optional_ones_are_none() -> None:
    client, _ = client_for(ok(200, {"id": "s$1", "name": "Bare", "@odata.whatever": 1, "newField": {}}))
    drive = await client.get_drive("s$1")
    assert (drive.quota_total, drive.description, drive.web_url, drive.disabled) == (None, None, None, False)


async def test_update_drive_patches_only_the_given_fields() -> None:
    client, rec = client_for(ok(200, drive_json(name="Physics")))
    drive = await client.update_drive(DRIVE_ID, name="Physics", quota_total=10)
    assert (rec.last.method, rec.last.url.raw_path.decode()) == ("PATCH", f"/graph/v1.0/drives/{ESCAPED}")
    assert rec.last_json() == {"name": "Physics", "quota": {"total": 10}}
    assert drive.name == "Physics"


async def test_disable_drive_deletes_without_purge_header() -> None:
    client, rec = client_for(ok(204))
    await client.disable_drive(DRIVE_ID)
    assert (rec.last.method, rec.last.url.raw_path.decode()) == ("DELETE", f"/graph/v1.0/drives/{ESCAPED}")
    assert "purge" not in rec.last.headers


async def test_purge_drive_deletes_with_the_purge_header() -> None:
    client, rec = client_for(ok(204))
    await client.purge_drive(DRIVE_ID)
    assert rec.last.method == "DELETE"
    assert rec.last.headers["Purge"] == "T"


async def test_restore_drive_patches_an_empty_object_with_the_restore_header() -> None:
    client, rec = client_for(ok(200, drive_json()))
    drive = await client.restore_drive(DRIVE_ID)
    assert rec.last.method == "PATCH"
    assert rec.last.headers["Restore"] == "T"
    assert rec.last_json() == {}
    assert drive.disabled is False


async def test_invite_sends_one_recipient_with_its_type_and_one_role() -> None:
    answer = {
        "value": [
            {"id": "g:grp-1", "roles": ["role-m"], "grantedToV2": {"group": {"id": "grp-1", "displayName": "Sales"}}}
        ]
    }
    client, rec = client_for(ok(200, answer))
    permission = await client.invite(DRIVE_ID, "grp-1", "role-m", recipient_type="group")
    assert rec.last.url.raw_path.decode() == f"/graph/v1beta1/drives/{ESCAPED}/root/invite"
    assert rec.last_json() == {
        "recipients": [{"@libre.graph.recipient.type": "group", "objectId": "grp-1"}],
        "roles": ["role-m"],
    }
    assert (permission.id, permission.recipient_type, permission.object_id, permission.role_id) == (
        "g:grp-1",
        "group",
        "grp-1",
        "role-m",
    )


async def test_invite_with_an_empty_answer_is_a_response_error() -> None:
    client, _ = client_for(ok(200, {"value": []}))
    with pytest.raises(OcisResponseError):
        await client.invite(DRIVE_ID, "u1", "r")


async def test_list_permissions_reads_members_and_ignores_role_catalogue() -> None:
    answer = {
        "@libre.graph.permissions.roles.allowedValues": [{"id": "r", "displayName": "Viewer"}],
        "value": [
            {"id": "u:u1", "roles": ["r"], "grantedToV2": {"user": {"id": "u1", "displayName": "Ann"}}},
            {"id": "link-1", "link": {"type": "view"}},
        ],
    }
    client, rec = client_for(ok(200, answer))
    permissions = await client.list_permissions(DRIVE_ID)
    assert rec.last.url.raw_path.decode() == f"/graph/v1beta1/drives/{ESCAPED}/root/permissions"
    assert [(p.id, p.recipient_type, p.object_id) for p in permissions] == [
        ("u:u1", "user", "u1"),
        ("link-1", None, None),
    ]


async def test_update_permission_escapes_the_permission_id_and_sends_the_role() -> None:
    client, rec = client_for(ok(200, {"id": "u:u1", "roles": ["r2"]}))
    permission = await client.update_permission(DRIVE_ID, "u:u1", role_id="r2")
    assert rec.last.method == "PATCH"
    assert rec.last.url.raw_path.decode() == f"/graph/v1beta1/drives/{ESCAPED}/root/permissions/u%3Au1"
    assert rec.last_json() == {"roles": ["r2"]}
    assert permission.role_id == "r2"


async def test_delete_permission_deletes_the_escaped_permission() -> None:
    client, rec = client_for(ok(204))
    await client.delete_permission(DRIVE_ID, "g:grp-1")
    assert rec.last.method == "DELETE"
    assert rec.last.url.raw_path.decode() == f"/graph/v1beta1/drives/{ESCAPED}/root/permissions/g%3Agrp-1"


async def test_basic_auth_mode_sends_the_app_token_as_basic_credentials() -> None:
    client, rec = client_for(ok(200, {"value": []}))
    await client.list_project_drives()
    expected = base64.b64encode(b"svc-provisioner:app-token").decode()
    assert rec.last.headers["Authorization"] == f"Basic {expected}"


async def test_client_credentials_mode_sends_a_bearer_token_from_the_token_endpoint() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/application/o/token/":
            return httpx.Response(200, json={"access_token": "jwt-1", "expires_in": 300})
        return httpx.Response(200, json={"value": []})

    recorder = Recorder(answer)
    http = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    auth = ClientCredentialsAuth("https://idp.test/application/o/token/", "cid", "secret", "openid", http)
    client = OcisClient(http, BASE, auth)
    await client.list_project_drives()
    await client.list_project_drives()
    paths = [r.url.path for r in recorder.requests]
    assert paths == ["/application/o/token/", "/graph/v1.0/drives", "/graph/v1.0/drives"]
    assert recorder.last.headers["Authorization"] == "Bearer jwt-1"


def odata(code: str, message: str, request_id: str = "req-1") -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "innererror": {"date": "2024-01-01T00:00:00Z", "request-id": request_id},
        }
    }


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "invalidRequest", OcisInvalidRequestError),
        (403, "notAllowed", OcisForbiddenError),
        (404, "itemNotFound", OcisNotFoundError),
        (409, "nameAlreadyExists", OcisConflictError),
        (429, "activityLimitReached", OcisRateLimitError),
        (500, "generalException", OcisServerError),
        (501, "notSupported", OcisNotSupportedError),
        (503, "serviceNotAvailable", OcisServerError),
        (405, "notAllowed", OcisResponseError),
    ],
)
async def test_error_status_maps_to_its_error_class_with_the_odata_details(
    status: int, code: str, cls: type[OcisResponseError]
) -> None:
    client, _ = client_for(ok(status, odata(code, "something went wrong")))
    with pytest.raises(cls) as info:
        await client.get_drive(DRIVE_ID)
    assert type(info.value) is cls
    assert (info.value.status, info.value.code, info.value.request_id) == (status, code, "req-1")
    assert "something went wrong" in str(info.value)


async def test_401_with_an_empty_body_says_the_credentials_were_rejected() -> None:
    client, _ = client_for(ok(401))
    with pytest.raises(OcisAuthError) as info:
        await client.list_project_drives()
    assert str(info.value) == "oCIS rejected the credentials (401)"
    assert info.value.code is None
    assert "app-token" not in str(info.value)


async def test_error_with_a_non_json_body_keeps_the_status() -> None:
    client, _ = client_for(lambda _r: httpx.Response(502, text="<html>Bad gateway</html>"))
    with pytest.raises(OcisServerError) as info:
        await client.get_drive(DRIVE_ID)
    assert info.value.status == 502
    assert info.value.code is None


async def test_retry_after_and_request_id_header_are_kept_on_the_error() -> None:
    client, _ = client_for(lambda _r: httpx.Response(429, headers={"Retry-After": "3", "X-Request-Id": "h-1"}))
    with pytest.raises(OcisRateLimitError) as info:
        await client.list_project_drives()
    assert (info.value.retry_after, info.value.request_id) == (3.0, "h-1")


async def test_connection_failure_is_a_connection_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client, _ = client_for(refuse)
    with pytest.raises(OcisConnectionError):
        await client.list_project_drives()


async def test_timeout_is_a_timeout_error_not_a_connection_error() -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    client, _ = client_for(hang)
    with pytest.raises(OcisTimeoutError) as info:
        await client.get_drive(DRIVE_ID)
    assert not isinstance(info.value, OcisConnectionError)


async def test_success_with_an_unreadable_body_is_a_response_error() -> None:
    client, _ = client_for(lambda _r: httpx.Response(200, text="not json"))
    with pytest.raises(OcisResponseError, match="not JSON"):
        await client.get_drive(DRIVE_ID)


async def test_success_with_a_drive_missing_its_id_is_a_response_error() -> None:
    client, _ = client_for(ok(200, {"name": "no id"}))
    with pytest.raises(OcisResponseError, match="cannot read"):
        await client.get_drive(DRIVE_ID)


async def test_an_explicit_timeout_overrides_the_http_clients_own() -> None:
    seen: list[dict[str, float | None]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(200, json={"value": []})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer), timeout=7) as http:
        await OcisClient(http, BASE, httpx.BasicAuth("a", "b")).list_project_drives()
        await OcisClient(http, BASE, httpx.BasicAuth("a", "b"), timeout=2).list_project_drives()
    assert [t["read"] for t in seen] == [7, 2]


async def test_me_reads_the_service_identity_with_a_request_the_spec_allows() -> None:
    from tests.support.openapi import ocis_spec, validate_request, validate_response

    answer = {
        "id": "4c510ada-c86b-4815-8820-42cdf82c3d51",
        "displayName": "Provisioner",
        "onPremisesSamAccountName": "svc-provisioner",
    }
    client, rec = client_for(ok(200, answer))
    user = await client.me()
    assert (user.id, user.display_name, user.username) == (answer["id"], "Provisioner", "svc-provisioner")
    assert (rec.last.method, rec.last.url.path) == ("GET", "/graph/v1.0/me")
    validate_request(ocis_spec(), rec.last)
    validate_response(ocis_spec(), rec.last, httpx.Response(200, json=answer))
