"""OcisFileProvider: ensure/adopt/create/repair a tenant's space, teardown, naming and error translation."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from tenantry.integrations.errors import PermanentStepError, TransientStepError
from tenantry.integrations.oauth import ClientCredentialsAuth
from tenantry.integrations.ocis.adapter import OcisFileProvider
from tenantry.integrations.ocis.client import OcisClient
from tenantry.integrations.ports import TenantSpec

TENANT = TenantSpec(
    id="0b6f1c2e-1111-4222-8333-444455556666",
    slug="acme",
    name="Acme Corp",
    generation=1,
    mail_domain="acme.test",
    quota_bytes=10_000_000_000,
)
MARKER = f"tenantry:tenant:{TENANT.id}"
APP_TOKEN = "app-token-value-123"


class FakeOcis:
    """Just enough LibreGraph drive behaviour, in memory, to exercise the adapter."""

    def __init__(self) -> None:
        self.drives: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail: dict[tuple[str, str], httpx.Response] = {}
        self._ids = itertools.count(1)

    def add(self, name: str, description: str | None = None, quota: int = 1, *, disabled: bool = False) -> str:
        drive_id = f"storage-users-1${next(self._ids):04d}"
        self.drives[drive_id] = {
            "id": drive_id,
            "name": name,
            "driveType": "project",
            "description": description,
            "quota": quota,
            "disabled": disabled,
        }
        return drive_id

    def view(self, drive_id: str) -> dict[str, Any]:
        d = self.drives[drive_id]
        body: dict[str, Any] = {
            "id": d["id"],
            "name": d["name"],
            "driveType": "project",
            "quota": {"total": d["quota"], "used": 0, "remaining": d["quota"], "state": "normal"},
            "webUrl": f"https://files.test/f/{d['id']}",
            "root": {"id": d["id"]},
        }
        if d["disabled"]:
            body["root"]["deleted"] = {"state": "trashed"}
        elif d["description"] is not None:
            body["description"] = d["description"]  # disabled spaces hide their description
        return body

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode().split("?")[0]
        tail = unquote(path.removeprefix("/graph/v1.0/drives").lstrip("/"))
        action = request.method
        if request.headers.get("Purge") == "T":
            action = "PURGE"
        if request.headers.get("Restore") == "T":
            action = "RESTORE"
        if path == "/graph/v1.0/me":
            self.calls.append((action, "/me"))
            for (method, match), response in self.fail.items():
                if method in {action, "*"} and match in path:
                    return response
            return httpx.Response(200, json={"id": "svc-id", "displayName": "Provisioner"})
        self.calls.append((action, tail))
        for (method, match), response in self.fail.items():
            if method in {action, "*"} and match in path:
                return response
        if not tail:
            if action == "GET":
                return httpx.Response(200, json={"value": [self.view(i) for i in self.drives]})
            body = json.loads(request.content)
            drive_id = self.add(body["name"], body.get("description"), body.get("quota", {}).get("total", 1))
            return httpx.Response(201, json=self.view(drive_id))
        if tail not in self.drives:
            return httpx.Response(404, json={"error": {"code": "itemNotFound", "message": "drive not found"}})
        drive = self.drives[tail]
        if action == "GET":
            return httpx.Response(200, json=self.view(tail))
        if action == "RESTORE":
            drive["disabled"] = False
            return httpx.Response(200, json=self.view(tail))
        if action == "PATCH":
            body = json.loads(request.content)
            drive["name"] = body.get("name", drive["name"])
            drive["description"] = body.get("description", drive["description"])
            drive["quota"] = body.get("quota", {}).get("total", drive["quota"])
            return httpx.Response(200, json=self.view(tail))
        if action == "DELETE":
            drive["disabled"] = True
            return httpx.Response(204)
        if not drive["disabled"]:
            return httpx.Response(
                400, json={"error": {"code": "invalidRequest", "message": "can't purge enabled space"}}
            )
        del self.drives[tail]
        return httpx.Response(204)

    def count(self, action: str) -> int:
        return sum(1 for a, _ in self.calls if a == action)


@pytest.fixture
def fake() -> FakeOcis:
    return FakeOcis()


@pytest.fixture
async def provider(fake: FakeOcis) -> AsyncIterator[OcisFileProvider]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        yield OcisFileProvider(OcisClient(http, "https://files.test", httpx.BasicAuth("svc", APP_TOKEN)))


async def test_creates_a_space_with_name_marker_and_quota_when_none_exists(
    fake: FakeOcis, provider: OcisFileProvider
) -> None:
    result = await provider.ensure_tenant_space(TENANT, {})
    ((drive_id, drive),) = fake.drives.items()
    assert (result.state, result.reason) == ("ok", "Created")
    assert result.ids == {"driveId": drive_id}
    assert drive["name"] == "Acme Corp"
    assert MARKER in drive["description"]
    assert drive["quota"] == TENANT.quota_bytes
    assert result.data == {"quotaBytes": TENANT.quota_bytes, "webUrl": f"https://files.test/f/{drive_id}"}
    assert any("created" in e for e in result.events)


async def test_rerun_with_the_stored_id_is_ready_and_changes_nothing(
    fake: FakeOcis, provider: OcisFileProvider
) -> None:
    first = await provider.ensure_tenant_space(TENANT, {})
    fake.calls.clear()
    second = await provider.ensure_tenant_space(TENANT, first.ids)
    assert (second.reason, second.ids, second.events) == ("Ready", first.ids, [])
    assert fake.calls == [("GET", first.ids["driveId"])]


async def test_adopts_the_space_carrying_our_marker_when_no_id_is_stored(
    fake: FakeOcis, provider: OcisFileProvider
) -> None:
    ours = fake.add("Acme Corp", f"Workspace files for Acme Corp [{MARKER}]", TENANT.quota_bytes)
    result = await provider.ensure_tenant_space(TENANT, {})
    assert (result.reason, result.ids) == ("Adopted", {"driveId": ours})
    assert fake.count("POST") == 0


async def test_a_space_with_the_same_name_but_no_marker_is_never_adopted(
    fake: FakeOcis, provider: OcisFileProvider
) -> None:
    stranger = fake.add("Acme Corp", "someone else's space", TENANT.quota_bytes)
    result = await provider.ensure_tenant_space(TENANT, {})
    assert result.reason == "Created"
    assert result.ids["driveId"] != stranger
    assert fake.drives[stranger]["description"] == "someone else's space"


async def test_a_marker_for_a_longer_tenant_id_does_not_count_as_ours(
    fake: FakeOcis, provider: OcisFileProvider
) -> None:
    fake.add("Other", f"[{MARKER}7]")
    result = await provider.ensure_tenant_space(TENANT, {})
    assert result.reason == "Created"


async def test_several_marked_spaces_keep_the_first_and_report_the_duplicates(
    fake: FakeOcis, provider: OcisFileProvider
) -> None:
    first = fake.add("Acme Corp", f"[{MARKER}]", TENANT.quota_bytes)
    second = fake.add("Acme Corp", f"[{MARKER}]", TENANT.quota_bytes)
    result = await provider.ensure_tenant_space(TENANT, {})
    assert result.ids == {"driveId": first}
    assert any(second in e and "also carry our marker" in e for e in result.events)
    assert second in fake.drives


async def test_a_changed_quota_is_patched_and_reported(fake: FakeOcis, provider: OcisFileProvider) -> None:
    drive_id = fake.add("Acme Corp", f"[{MARKER}]", 1_000)
    result = await provider.ensure_tenant_space(TENANT, {"driveId": drive_id})
    assert fake.drives[drive_id]["quota"] == TENANT.quota_bytes
    assert f"quota changed from 1000 to {TENANT.quota_bytes}" in result.events
    assert result.data["quotaBytes"] == TENANT.quota_bytes


async def test_a_renamed_tenant_renames_its_space(fake: FakeOcis, provider: OcisFileProvider) -> None:
    drive_id = fake.add("Old Name", f"[{MARKER}]", TENANT.quota_bytes)
    result = await provider.ensure_tenant_space(TENANT, {"driveId": drive_id})
    assert fake.drives[drive_id]["name"] == "Acme Corp"
    assert "space name changed from 'Old Name' to 'Acme Corp'" in result.events


async def test_a_lost_marker_on_our_stored_space_is_written_back(fake: FakeOcis, provider: OcisFileProvider) -> None:
    drive_id = fake.add("Acme Corp", "edited by hand", TENANT.quota_bytes)
    await provider.ensure_tenant_space(TENANT, {"driveId": drive_id})
    assert MARKER in fake.drives[drive_id]["description"]


async def test_a_space_deleted_out_of_band_is_recreated(fake: FakeOcis, provider: OcisFileProvider) -> None:
    result = await provider.ensure_tenant_space(TENANT, {"driveId": "storage-users-1$gone"})
    assert result.reason == "Created"
    assert result.ids["driveId"] in fake.drives
    assert any("storage-users-1$gone was deleted out of band; recreated" in e for e in result.events)


async def test_a_disabled_space_of_ours_is_restored(fake: FakeOcis, provider: OcisFileProvider) -> None:
    drive_id = fake.add("Acme Corp", f"[{MARKER}]", TENANT.quota_bytes, disabled=True)
    result = await provider.ensure_tenant_space(TENANT, {"driveId": drive_id})
    assert fake.drives[drive_id]["disabled"] is False
    assert result.ids == {"driveId": drive_id}
    assert any("restored" in e for e in result.events)
    assert fake.count("POST") == 0


async def test_disable_disables_once_and_is_idempotent(fake: FakeOcis, provider: OcisFileProvider) -> None:
    drive_id = fake.add("Acme Corp", f"[{MARKER}]", TENANT.quota_bytes)
    first = await provider.disable_tenant_space(TENANT, {"driveId": drive_id})
    second = await provider.disable_tenant_space(TENANT, {"driveId": drive_id})
    assert (first.reason, second.reason) == ("Disabled", "AlreadyDisabled")
    assert fake.drives[drive_id]["disabled"] is True
    assert fake.count("DELETE") == 1
    assert second.ids == {"driveId": drive_id}


async def test_disable_of_a_missing_space_is_done(fake: FakeOcis, provider: OcisFileProvider) -> None:
    result = await provider.disable_tenant_space(TENANT, {"driveId": "storage-users-1$gone"})
    assert (result.state, result.reason) == ("ok", "NotFound")


async def test_disable_without_stored_id_finds_our_space_by_marker(fake: FakeOcis, provider: OcisFileProvider) -> None:
    drive_id = fake.add("Acme Corp", f"[{MARKER}]")
    stranger = fake.add("Acme Corp", "not ours")
    await provider.disable_tenant_space(TENANT, {})
    assert fake.drives[drive_id]["disabled"] is True
    assert fake.drives[stranger]["disabled"] is False


async def test_purge_disables_first_then_purges_and_is_idempotent(fake: FakeOcis, provider: OcisFileProvider) -> None:
    drive_id = fake.add("Acme Corp", f"[{MARKER}]")
    first = await provider.purge_tenant_space(TENANT, {"driveId": drive_id})
    second = await provider.purge_tenant_space(TENANT, {"driveId": drive_id})
    assert (first.reason, second.reason) == ("Purged", "NotFound")
    assert drive_id not in fake.drives
    assert [a for a, _ in fake.calls if a in {"DELETE", "PURGE"}] == ["DELETE", "PURGE"]


async def test_purge_of_an_already_disabled_space_purges_directly(fake: FakeOcis, provider: OcisFileProvider) -> None:
    drive_id = fake.add("Acme Corp", f"[{MARKER}]", disabled=True)
    result = await provider.purge_tenant_space(TENANT, {"driveId": drive_id})
    assert result.reason == "Purged"
    assert fake.count("DELETE") == 0
    assert drive_id not in fake.drives


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Acme Corp", "Acme Corp"),
        ("acme.com", "acme com"),
        ('a/b\\c.d:e?f*g"h>i<j|k', "a b c d e f g h i j k"),
        ("  lots   of \t space\n ", "lots of space"),
        ("../..", "acme"),
        ("", "acme"),
    ],
)
def test_space_name_replaces_forbidden_characters_and_falls_back_to_the_slug(raw: str, expected: str) -> None:
    provider = OcisFileProvider(OcisClient(httpx.AsyncClient(), "https://x", httpx.BasicAuth("a", "b")))
    assert provider.space_name(raw, fallback="acme") == expected


def test_space_name_is_at_most_255_bytes_without_splitting_a_character() -> None:
    provider = OcisFileProvider(OcisClient(httpx.AsyncClient(), "https://x", httpx.BasicAuth("a", "b")))
    name = provider.space_name("é" * 300)
    assert len(name.encode()) <= 255
    assert set(name) == {"é"}


def test_space_name_is_never_empty() -> None:
    provider = OcisFileProvider(OcisClient(httpx.AsyncClient(), "https://x", httpx.BasicAuth("a", "b")))
    assert provider.space_name("...", fallback="...") == "Workspace"


async def test_unsafe_tenant_name_is_sanitised_when_creating(fake: FakeOcis, provider: OcisFileProvider) -> None:
    tenant = TenantSpec(
        id=TENANT.id, slug="acme-com", name="acme.com", generation=1, mail_domain="acme.com", quota_bytes=5
    )
    await provider.ensure_tenant_space(tenant, {})
    (drive,) = fake.drives.values()
    assert drive["name"] == "acme com"


async def test_401_is_a_permanent_authentication_failure(fake: FakeOcis, provider: OcisFileProvider) -> None:
    fake.fail[("*", "/graph")] = httpx.Response(401)
    with pytest.raises(PermanentStepError) as info:
        await provider.ensure_tenant_space(TENANT, {})
    assert info.value.reason == "AuthenticationFailed"
    assert "401" in info.value.message
    assert APP_TOKEN not in info.value.message


async def test_403_is_permanent_and_names_the_space_admin_role(fake: FakeOcis, provider: OcisFileProvider) -> None:
    fake.fail[("POST", "/graph")] = httpx.Response(
        403, json={"error": {"code": "notAllowed", "message": "insufficient permissions to create a space."}}
    )
    with pytest.raises(PermanentStepError) as info:
        await provider.ensure_tenant_space(TENANT, {})
    assert info.value.reason == "Forbidden"
    assert "Space Admin" in info.value.message


async def test_400_is_permanent_with_the_message_from_ocis(fake: FakeOcis, provider: OcisFileProvider) -> None:
    fake.fail[("POST", "/graph")] = httpx.Response(
        400, json={"error": {"code": "invalidRequest", "message": "requested quota is higher than allowed"}}
    )
    with pytest.raises(PermanentStepError) as info:
        await provider.ensure_tenant_space(TENANT, {})
    assert info.value.reason == "ValidationFailed"
    assert "requested quota is higher than allowed" in info.value.message


async def test_503_is_transient_and_keeps_retry_after(fake: FakeOcis, provider: OcisFileProvider) -> None:
    fake.fail[("*", "/graph")] = httpx.Response(503, headers={"Retry-After": "12"})
    with pytest.raises(TransientStepError) as info:
        await provider.ensure_tenant_space(TENANT, {})
    assert (info.value.reason, info.value.retry_after) == ("UpstreamError", 12.0)


async def test_429_is_transient_rate_limited(fake: FakeOcis, provider: OcisFileProvider) -> None:
    fake.fail[("GET", "/graph")] = httpx.Response(429, headers={"Retry-After": "2"})
    with pytest.raises(TransientStepError) as info:
        await provider.ping()
    assert (info.value.reason, info.value.retry_after) == ("RateLimited", 2.0)


async def test_a_space_that_vanishes_while_being_repaired_is_looked_for_again(
    fake: FakeOcis, provider: OcisFileProvider
) -> None:
    drive_id = fake.add("Old name", MARKER, quota=TENANT.quota_bytes)
    fake.fail[("PATCH", "/graph")] = httpx.Response(404, json={"error": {"code": "itemNotFound", "message": "gone"}})
    with pytest.raises(TransientStepError) as info:
        await provider.ensure_tenant_space(TENANT, {"driveId": drive_id})
    assert info.value.reason == "UpstreamChanged"
    assert drive_id in info.value.message


async def test_a_404_from_the_drives_endpoint_itself_is_permanent(fake: FakeOcis, provider: OcisFileProvider) -> None:
    fake.fail[("GET", "/graph")] = httpx.Response(404, text="404 page not found")
    with pytest.raises(PermanentStepError) as info:
        await provider.ensure_tenant_space(TENANT, {})
    assert info.value.reason == "NotFound"
    assert "oCIS URL" in info.value.message


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (httpx.ConnectError("refused"), "UpstreamUnreachable"),
        (httpx.ReadTimeout("slow"), "UpstreamTimeout"),
    ],
)
async def test_network_failures_are_transient(error: Exception, reason: str) -> None:
    def fail(_request: httpx.Request) -> httpx.Response:
        raise error

    async with httpx.AsyncClient(transport=httpx.MockTransport(fail)) as http:
        provider = OcisFileProvider(OcisClient(http, "https://files.test", httpx.BasicAuth("a", "b")))
        with pytest.raises(TransientStepError) as info:
            await provider.ensure_tenant_space(TENANT, {})
    assert info.value.reason == reason


async def test_ping_reads_the_service_identity_without_listing_spaces(
    fake: FakeOcis, provider: OcisFileProvider
) -> None:
    await provider.ping()
    assert fake.calls == [("GET", "/me")]


def token_endpoint(status: int, body: dict[str, Any]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/application/o/token/"
        return httpx.Response(status, json=body)

    return httpx.MockTransport(handler)


async def test_rejected_client_credentials_are_a_permanent_authentication_failure() -> None:
    transport = token_endpoint(401, {"error": "invalid_client", "error_description": "bad secret"})
    async with httpx.AsyncClient(transport=transport) as http:
        auth = ClientCredentialsAuth("https://idp.test/application/o/token/", "cid", "hunter2", None, http)
        provider = OcisFileProvider(OcisClient(http, "https://files.test", auth))
        with pytest.raises(PermanentStepError) as info:
            await provider.ping()
    assert info.value.reason == "AuthenticationFailed"
    assert "hunter2" not in info.value.message


async def test_token_endpoint_server_error_is_transient() -> None:
    transport = token_endpoint(502, {"detail": "bad gateway"})
    async with httpx.AsyncClient(transport=transport) as http:
        auth = ClientCredentialsAuth("https://idp.test/application/o/token/", "cid", "hunter2", None, http)
        provider = OcisFileProvider(OcisClient(http, "https://files.test", auth))
        with pytest.raises(TransientStepError) as info:
            await provider.ping()
    assert info.value.reason == "UpstreamError"
