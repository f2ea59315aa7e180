"""Every request OcisClient sends, and the canned answers it reads, validate against the LibreGraph spec."""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
import yaml
from openapi_core.validation.request.exceptions import InvalidRequestBody

from tenantry.integrations.ocis.adapter import OcisFileProvider
from tenantry.integrations.ocis.client import OcisClient
from tenantry.integrations.ocis.errors import OcisInvalidRequestError, OcisNotFoundError
from tenantry.integrations.ports import TenantSpec
from tests.support.openapi import ocis_spec, shared_file, validate_request, validate_response

DRIVE_ID = "storage-users-1$535aa42d-0000-4000-8000-000000000001"
USER = {"id": "535aa42d-0000-4000-8000-0000000000aa", "displayName": "Provisioner"}
MANAGER = "312c0871-5ef7-4b3a-85b6-0e4074c64049"
SPACE_EDITOR = "58c63c02-1d89-4572-916a-870abc5a1b7d"

# The spec's first security scheme is openIdConnect, which openapi-core cannot check and warns about; the
# basicAuth alternative is what these requests use.
pytestmark = pytest.mark.filterwarnings("ignore:Unsupported scheme type:UserWarning")


def _documented_write(error: Any, request: httpx.Request) -> bool:
    """The spec marks two things read-only that its own examples (and oCIS) accept in requests.

    ``quota`` of a drive: the CreateDrive and UpdateDrive examples send ``quota.total``; and the whole
    ``permission`` schema: the UpdatePermissionSpaceRoot example sends ``roles``. Only those
    readOnly complaints are forgiven; anything else the client sends must be allowed by the spec.
    """
    if error.validator != "readOnly":
        return False
    path = list(error.absolute_path)
    if request.method == "PATCH" and "/root/permissions/" in request.url.path:
        return path == []
    return request.url.path.startswith("/graph/v1.0/drives") and path[:1] == ["quota"]


@functools.cache
def _declared_properties(schema: str) -> frozenset[str]:
    with shared_file("ocis", "libre-graph-api.yaml").open("rb") as fh:
        data = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return frozenset(data["components"]["schemas"][schema]["properties"])


def _body_schema(request: httpx.Request) -> str | None:
    path = request.url.path
    if path.startswith("/graph/v1.0/drives"):
        return "driveUpdate"
    if path.endswith("/root/invite"):
        return "driveItemInvite"
    if "/root/permissions/" in path:
        return "permission"
    return None


def check_request(request: httpx.Request) -> None:
    """Spec validation, plus oCIS's strict decoding: a body property the schema does not declare is a 400."""
    try:
        validate_request(ocis_spec(), request)
    except InvalidRequestBody as err:
        errors = getattr(err.__cause__, "schema_errors", None)
        if not errors or not all(_documented_write(e, request) for e in errors):
            raise
    schema = _body_schema(request)
    if request.content and schema is not None:
        undeclared = set(json.loads(request.content)) - _declared_properties(schema)
        assert not undeclared, f"{request.method} {request.url.path} sends undeclared {sorted(undeclared)}"


def drive(
    drive_id: str = DRIVE_ID,
    *,
    name: str = "Marketing",
    description: str = "Team files",
    total: int = 5_000_000_000,
    disabled: bool = False,
) -> dict[str, Any]:
    root: dict[str, Any] = {"id": drive_id, "webDavUrl": f"https://files.test/dav/spaces/{drive_id}"}
    body: dict[str, Any] = {
        "id": drive_id,
        "name": name,
        "driveType": "project",
        "driveAlias": "project/marketing",
        "owner": {"user": USER},
        "quota": {"total": total, "used": 0, "remaining": total, "state": "normal"},
        "root": root,
        "webUrl": f"https://files.test/f/{drive_id}",
        "lastModifiedDateTime": "2025-01-01T10:00:00Z",
    }
    if disabled:
        root["deleted"] = {"state": "trashed"}
    else:
        body["description"] = description
    return body


def permission(perm_id: str, role: str) -> dict[str, Any]:
    return {"id": perm_id, "roles": [role], "grantedToV2": {"user": USER}}


class SpecHandler:
    """Validates each request, answers from a small in-memory state, validates the answer."""

    def __init__(self) -> None:
        self.drives: dict[str, dict[str, Any]] = {DRIVE_ID: drive()}
        self.seen: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        check_request(request)
        response = self.answer(request)
        validate_response(ocis_spec(), request, response)
        self.seen.append(f"{request.method} {request.url.path}")
        return response

    def answer(self, request: httpx.Request) -> httpx.Response:
        path = unquote(request.url.raw_path.decode().split("?")[0])
        method = request.method
        body = json.loads(request.content) if request.content else None
        if path == "/graph/v1.0/me" and method == "GET":
            return httpx.Response(
                200,
                json={
                    "id": "4c510ada-c86b-4815-8820-42cdf82c3d51",
                    "displayName": "Provisioner",
                    "onPremisesSamAccountName": "svc-provisioner",
                },
            )
        if path == "/graph/v1.0/drives":
            if method == "GET":
                return httpx.Response(200, json={"value": list(self.drives.values())})
            new_id = f"storage-users-1$new-{len(self.drives)}"
            self.drives[new_id] = drive(
                new_id,
                name=body["name"],
                description=body.get("description", ""),
                total=body.get("quota", {}).get("total", 1_000_000_000),
            )
            return httpx.Response(201, json=self.drives[new_id])
        if path.startswith("/graph/v1.0/drives/"):
            drive_id = path.removeprefix("/graph/v1.0/drives/")
            if drive_id not in self.drives:
                return error(404, "itemNotFound", "drive not found")
            current = self.drives[drive_id]
            if method == "GET":
                return httpx.Response(200, json=current)
            if method == "PATCH" and request.headers.get("Restore") == "T":
                self.drives[drive_id] = drive(drive_id, name=current["name"])
                return httpx.Response(200, json=self.drives[drive_id])
            if method == "PATCH":
                self.drives[drive_id] = drive(
                    drive_id,
                    name=body.get("name", current["name"]),
                    description=body.get("description", current.get("description", "")),
                    total=body.get("quota", {}).get("total", current["quota"]["total"]),
                )
                return httpx.Response(200, json=self.drives[drive_id])
            disabled = "deleted" in current["root"]
            if request.headers.get("Purge") == "T":
                if not disabled:
                    return error(400, "invalidRequest", "can't purge enabled space")
                del self.drives[drive_id]
                return httpx.Response(204)
            self.drives[drive_id] = drive(drive_id, name=current["name"], disabled=True)
            return httpx.Response(204)
        if path.endswith("/root/invite"):
            return httpx.Response(200, json={"value": [permission("u:" + USER["id"], SPACE_EDITOR)]})
        if path.endswith("/root/permissions") and method == "GET":
            return httpx.Response(
                200,
                json={
                    "@libre.graph.permissions.roles.allowedValues": [
                        {"id": MANAGER, "displayName": "Manager", "description": "Allows managing a space"}
                    ],
                    "value": [permission("u:" + USER["id"], MANAGER)],
                },
            )
        if "/root/permissions/" in path:
            if method == "PATCH":
                return httpx.Response(200, json=permission("u:" + USER["id"], body["roles"][0]))
            return httpx.Response(204)
        return error(404, "itemNotFound", f"no route for {method} {path}")


def error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(
        status,
        json={
            "error": {
                "code": code,
                "message": message,
                "innererror": {"date": "2025-01-01T10:00:00Z", "request-id": "req-1"},
            }
        },
    )


@pytest.fixture
def handler() -> SpecHandler:
    ocis_spec()  # skips the module's tests when the spec is not beside the checkout
    return SpecHandler()


@pytest.fixture
async def client(handler: SpecHandler) -> AsyncIterator[OcisClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        yield OcisClient(http, "https://files.test", httpx.BasicAuth("svc-provisioner", "app-token"))


def test_the_allowance_still_rejects_what_the_spec_forbids() -> None:
    ocis_spec()
    bad = httpx.Request("POST", "https://files.test/graph/v1.0/drives", json={"name": 5})
    with pytest.raises(InvalidRequestBody):
        check_request(bad)
    read_only_id = httpx.Request("POST", "https://files.test/graph/v1.0/drives", json={"name": "x", "id": "y"})
    with pytest.raises(InvalidRequestBody):
        check_request(read_only_id)
    unknown = httpx.Request("POST", "https://files.test/graph/v1.0/drives", json={"name": "x", "size": 1})
    with pytest.raises(AssertionError, match="undeclared"):
        check_request(unknown)


async def test_drive_lifecycle_requests_and_answers_match_the_spec(client: OcisClient, handler: SpecHandler) -> None:
    created = await client.create_drive(
        "Mars", description="Team space mars project", quota_total=1000, drive_alias="project/mars"
    )
    assert [d.id for d in await client.list_project_drives()] == [DRIVE_ID, created.id]
    assert (await client.get_drive(created.id)).quota_total == 1000
    updated = await client.update_drive(created.id, name="Physics", description="d", quota_total=2000)
    assert (updated.name, updated.quota_total) == ("Physics", 2000)
    await client.disable_drive(created.id)
    assert (await client.get_drive(created.id)).disabled is True
    assert (await client.restore_drive(created.id)).disabled is False
    with pytest.raises(OcisInvalidRequestError):
        await client.purge_drive(created.id)
    await client.disable_drive(created.id)
    await client.purge_drive(created.id)
    with pytest.raises(OcisNotFoundError):
        await client.get_drive(created.id)
    assert len(handler.seen) == 11  # every call was validated, the refused purge included


async def test_membership_requests_and_answers_match_the_spec(client: OcisClient) -> None:
    invited = await client.invite(DRIVE_ID, USER["id"], SPACE_EDITOR)
    assert invited.object_id == USER["id"]
    group_invite = await client.invite(DRIVE_ID, "grp-1", MANAGER, recipient_type="group")
    assert group_invite.id.startswith("u:")
    (member,) = await client.list_permissions(DRIVE_ID)
    assert member.role_id == MANAGER
    changed = await client.update_permission(DRIVE_ID, member.id, role_id=SPACE_EDITOR)
    assert changed.role_id == SPACE_EDITOR
    await client.delete_permission(DRIVE_ID, member.id)


async def test_adapter_requests_match_the_spec_through_create_drift_and_teardown(
    client: OcisClient, handler: SpecHandler
) -> None:
    tenant = TenantSpec(
        id="0b6f1c2e-1111-4222-8333-444455556666",
        slug="acme",
        name="acme.com",
        generation=1,
        mail_domain="acme.com",
        quota_bytes=10_000,
    )
    provider = OcisFileProvider(client)
    created = await provider.ensure_tenant_space(tenant, {})
    bigger = TenantSpec(**{**tenant.__dict__, "quota_bytes": 20_000, "name": "Acme"})
    repaired = await provider.ensure_tenant_space(bigger, created.ids)
    assert repaired.data["quotaBytes"] == 20_000
    await provider.disable_tenant_space(bigger, created.ids)
    await provider.ensure_tenant_space(bigger, created.ids)  # restores the disabled space
    await provider.purge_tenant_space(bigger, created.ids)
    await provider.ping()
    assert created.ids["driveId"] not in handler.drives
