"""oCIS accepts two spaces of one name, so a create whose answer was lost must never simply be sent again.

The adapter against the oCIS sandbox in process, told by a journal what earlier attempts did.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tenantry.integrations.errors import StepError, TransientStepError
from tenantry.integrations.ocis.adapter import OcisFileProvider
from tenantry.integrations.ocis.client import OcisClient
from tenantry.integrations.ports import TenantSpec
from tenantry.sandbox.ocis import OcisSandbox

SERVICE_USER, APP_TOKEN = "svc-provisioner", "sandbox-app-token"
TENANT = TenantSpec(
    id="5f0c1a8e-2b7d-4c3e-9a61-0d2e4f6b8c10",
    slug="acme",
    name="Acme",
    generation=1,
    mail_domain="acme.example.com",
    quota_bytes=10**9,
)
MARKER = f"tenantry:tenant:{TENANT.id}"


class Journal:
    """A CreateJournal whose answers a test sets, recording each begin()."""

    def __init__(self, *, in_doubt: bool, settling: float = 0.0) -> None:
        self.in_doubt = in_doubt
        self.settling = settling
        self.begun = 0
        self.was_refused = False

    def refused(self) -> None:
        self.was_refused = True

    def settling_seconds(self) -> float:
        return self.settling

    async def begin(self) -> None:
        self.begun += 1


@pytest.fixture
def sandbox() -> OcisSandbox:
    return OcisSandbox(app_tokens={SERVICE_USER: APP_TOKEN}, space_admins=[SERVICE_USER])


@pytest.fixture
async def provider(sandbox: OcisSandbox) -> AsyncIterator[OcisFileProvider]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox.app)) as http:
        yield OcisFileProvider(OcisClient(http, "http://ocis.sandbox", httpx.BasicAuth(SERVICE_USER, APP_TOKEN)))


def sent(sandbox: OcisSandbox, method: str) -> int:
    return len(sandbox.controls.requests(method, r"^/graph/v1\.0/drives$"))


def marked(sandbox: OcisSandbox) -> list[dict[str, object]]:
    return [s for s in sandbox.spaces() if MARKER in str(s.get("description"))]


async def test_a_first_attempt_creates_without_listing_every_space(
    sandbox: OcisSandbox, provider: OcisFileProvider
) -> None:
    for n in range(5):
        sandbox.add_space(f"Someone else's {n}", description="not ours")
    journal = Journal(in_doubt=False)

    result = await provider.ensure_tenant_space(TENANT, {}, journal)

    assert result.reason == "Created"
    assert (sent(sandbox, "GET"), sent(sandbox, "POST"), journal.begun) == (0, 1, 1)
    assert [s["id"] for s in marked(sandbox)] == [result.ids["driveId"]]


async def test_after_an_unanswered_create_the_space_it_made_is_adopted_not_duplicated(
    sandbox: OcisSandbox, provider: OcisFileProvider
) -> None:
    # The earlier attempt's POST completed in oCIS but its answer never arrived.
    made = sandbox.add_space("Acme", description=f"Workspace files for Acme [{MARKER}]", quota=10**9)
    journal = Journal(in_doubt=True, settling=25.0)

    result = await provider.ensure_tenant_space(TENANT, {}, journal)

    assert (result.reason, result.ids) == ("Adopted", {"driveId": made["id"]})
    assert (sent(sandbox, "POST"), journal.begun) == (0, 0)
    assert len(marked(sandbox)) == 1


async def test_while_an_unanswered_create_may_still_complete_nothing_is_created(
    sandbox: OcisSandbox, provider: OcisFileProvider
) -> None:
    journal = Journal(in_doubt=True, settling=25.0)

    with pytest.raises(TransientStepError) as raised:
        await provider.ensure_tenant_space(TENANT, {}, journal)

    assert raised.value.reason == "CreateUnsettled"
    assert raised.value.retry_after == 25.0
    assert "may still complete in oCIS" in raised.value.message
    assert (sent(sandbox, "POST"), journal.begun, marked(sandbox)) == (0, 0, [])


async def test_once_the_window_has_passed_without_a_space_it_is_created_once(
    sandbox: OcisSandbox, provider: OcisFileProvider
) -> None:
    journal = Journal(in_doubt=True, settling=0.0)

    result = await provider.ensure_tenant_space(TENANT, {}, journal)

    assert result.reason == "Created"
    assert (sent(sandbox, "GET"), sent(sandbox, "POST"), journal.begun) == (1, 1, 1)
    assert len(marked(sandbox)) == 1


async def test_a_lost_create_journal_write_sends_no_create(sandbox: OcisSandbox, provider: OcisFileProvider) -> None:
    class Refusing(Journal):
        async def begin(self) -> None:
            raise TransientStepError("lease lost", reason="LeaseLost")

    with pytest.raises(TransientStepError):
        await provider.ensure_tenant_space(TENANT, {}, Refusing(in_doubt=False))

    assert (sent(sandbox, "POST"), marked(sandbox)) == (0, [])


async def test_the_listing_builds_drives_only_for_spaces_carrying_the_marker(
    sandbox: OcisSandbox, provider: OcisFileProvider
) -> None:
    ours = sandbox.add_space("Acme", description=f"[{MARKER}]")
    sandbox.add_space("Acme", description="[tenantry:tenant:someone-else]")
    sandbox.add_space("Acme", description=None)

    found = await provider._client.list_project_drives(description_contains=MARKER)

    assert [d.id for d in found] == [ours["id"]]


@pytest.mark.parametrize(("status", "refused"), [(503, True), (500, True), (400, True), (502, False), (504, False)])
async def test_a_refused_create_is_told_to_the_journal_but_a_gateway_error_stays_in_doubt(
    sandbox: OcisSandbox, provider: OcisFileProvider, status: int, refused: bool
) -> None:
    sandbox.controls.fail(r"^/graph/v1\.0/drives$", status=status, method="POST", times=1)
    journal = Journal(in_doubt=False)

    with pytest.raises(StepError):
        await provider.ensure_tenant_space(TENANT, {}, journal)

    assert (journal.begun, journal.was_refused) == (1, refused)


class LosesCreateAnswers(httpx.AsyncBaseTransport):
    """Passes requests to the sandbox, but the answer to each create is lost on the way back (the space exists)."""

    def __init__(self, sandbox: OcisSandbox) -> None:
        self._inner = httpx.ASGITransport(app=sandbox.app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if request.method == "POST" and request.url.path == "/graph/v1.0/drives":
            raise httpx.ReadError("connection reset by peer", request=request)
        return response


async def test_a_create_whose_answer_was_lost_is_adopted_on_the_next_attempt(sandbox: OcisSandbox) -> None:
    journal = Journal(in_doubt=False)
    auth = httpx.BasicAuth(SERVICE_USER, APP_TOKEN)
    async with httpx.AsyncClient(transport=LosesCreateAnswers(sandbox)) as http:
        lossy = OcisFileProvider(OcisClient(http, "http://ocis.sandbox", auth))
        with pytest.raises(TransientStepError):
            await lossy.ensure_tenant_space(TENANT, {}, journal)
        assert (journal.begun, journal.was_refused) == (1, False)  # in doubt: not a refusal
        journal.in_doubt, journal.settling = True, 29.0  # what the store tells the next attempt
        result = await lossy.ensure_tenant_space(TENANT, {}, journal)

    assert result.reason == "Adopted"
    assert [s["id"] for s in marked(sandbox)] == [result.ids["driveId"]]
    assert sent(sandbox, "POST") == 1
