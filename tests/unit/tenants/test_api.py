"""The tenants API against scripted providers: validation, conflicts, listing, reconcile, roll-up."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from tenantry.config import Settings
from tenantry.container import OCIS_UNSET, STALWART_UNSET
from tenantry.integrations.errors import PermanentStepError, TransientStepError
from tenantry.integrations.null import NotConfigured
from tenantry.integrations.ports import StepResult
from tenantry.provisioning.steps import build_steps
from tenantry.tenants.models import Tenant
from tests.support.api import api_client
from tests.support.fakes import ScriptedProvider
from tests.support.stack import waits_for_a_human


def three_steps(
    identity: ScriptedProvider | None = None,
    mail: ScriptedProvider | None = None,
    files: ScriptedProvider | None = None,
) -> list[Any]:
    return build_steps(
        identity or ScriptedProvider("group"), mail or ScriptedProvider("domain"), files or ScriptedProvider("drive")
    )


async def count_tenants(client_container: Any) -> int:
    async with client_container.sessionmaker() as session:
        return int(await session.scalar(sa.select(sa.func.count()).select_from(Tenant)) or 0)


async def test_create_answers_201_with_the_tenant_active_after_the_first_reconcile(
    make_settings: Callable[..., Settings],
) -> None:
    async with api_client(make_settings(), steps=three_steps()) as (client, _):
        response = await client.post("/tenants", json={"slug": "acme", "name": "Acme Corp"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["slug"] == "acme"
    assert body["status"] == "active"
    assert body["provisioningStatus"] == {"authentik": "ok", "stalwart": "ok", "ocis": "ok"}
    assert body["provisioningErrors"] == {}
    assert body["mailDomain"] == "acme.mail.example.test"
    assert body["conditions"]["authentik"]["upstreamIds"] == {"groupId": "group-acme"}
    assert body["conditions"]["authentik"]["observedGeneration"] == 1
    assert body["conditions"]["authentik"]["lastSuccessAt"] is not None
    assert response.headers["location"] == "/tenants/acme"


async def test_create_answers_after_the_configured_wait_when_a_step_is_slow(
    make_settings: Callable[..., Settings],
) -> None:
    slow = ScriptedProvider("drive", delay=1.0)
    async with api_client(make_settings(create_wait_seconds=0.1), steps=three_steps(files=slow)) as (client, _):
        response = await client.post("/tenants", json={"slug": "slowco", "name": "Slow"})
        assert response.status_code == 201
        assert response.json()["status"] == "pending"
        assert response.json()["provisioningStatus"]["ocis"] == "pending"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"slug": "ab", "name": "x"}, "slug"),
        ({"slug": "-acme", "name": "x"}, "slug"),
        ({"slug": "acme-", "name": "x"}, "slug"),
        ({"slug": "Acme", "name": "x"}, "slug"),
        ({"slug": "ac_me", "name": "x"}, "slug"),
        ({"slug": "a" * 64, "name": "x"}, "slug"),
        ({"slug": "admin", "name": "x"}, "slug"),
        ({"slug": "ab--cd", "name": "x"}, "slug"),
        ({"slug": "xn--zz", "name": "x"}, "slug"),
        ({"slug": "mail", "name": "x"}, "slug"),
        ({"slug": "acme", "name": ""}, "name"),
        ({"slug": "acme", "name": "   "}, "name"),
        ({"slug": "acme", "name": "x" * 201}, "name"),
        ({"slug": "acme"}, "name"),
        ({"slug": "acme", "name": "x", "plan": "gold"}, "plan"),
        ({"slug": "acme", "name": "x", "mailDomain": "not a domain"}, "mailDomain"),
        ({"slug": "acme", "name": "x", "quotaBytes": -1}, "quotaBytes"),
    ],
)
async def test_invalid_input_is_refused_with_422_naming_the_field_and_nothing_is_written(
    make_settings: Callable[..., Settings], payload: dict[str, Any], field: str
) -> None:
    async with api_client(make_settings(), steps=three_steps()) as (client, container):
        response = await client.post("/tenants", json=payload)
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["error"] == "validation_error"
        assert field in [problem["field"] for problem in body["detail"]]
        assert await count_tenants(container) == 0


async def test_duplicate_slug_is_409_and_changes_nothing(make_settings: Callable[..., Settings]) -> None:
    async with api_client(make_settings(), steps=three_steps()) as (client, container):
        first = await client.post("/tenants", json={"slug": "acme", "name": "Acme"})
        second = await client.post("/tenants", json={"slug": "acme", "name": "Other"})
        assert second.status_code == 409
        assert second.json()["error"] == "conflict"
        shown = (await client.get("/tenants/acme")).json()
        assert shown["name"] == "Acme"
        assert shown["id"] == first.json()["id"]
        assert await count_tenants(container) == 1


async def test_a_custom_mail_domain_is_stored_in_ascii_and_cannot_be_taken_twice(
    make_settings: Callable[..., Settings],
) -> None:
    async with api_client(make_settings(), steps=three_steps()) as (client, container):
        first = await client.post(
            "/tenants", json={"slug": "bucher", "name": "Bücher", "mailDomain": "Bücher.Example.com", "verify": False}
        )
        assert first.status_code == 201, first.text
        assert first.json()["mailDomain"] == "xn--bcher-kva.example.com"
        again = await client.post(
            "/tenants", json={"slug": "books", "name": "B", "mailDomain": "xn--bcher-kva.example.com"}
        )
        assert again.status_code == 409
        assert "xn--bcher-kva.example.com" in again.json()["detail"]
        assert await count_tenants(container) == 1


async def test_unknown_tenant_is_404(make_settings: Callable[..., Settings]) -> None:
    async with api_client(make_settings(), steps=three_steps()) as (client, _):
        for response in (
            await client.get("/tenants/nope"),
            await client.post("/tenants/nope/reconcile"),
            await client.patch("/tenants/nope", json={"name": "x"}),
        ):
            assert response.status_code == 404
            assert response.json()["error"] == "not_found"


async def test_list_is_paginated_and_filters_by_status(make_settings: Callable[..., Settings]) -> None:
    failing = ScriptedProvider("group", script=[PermanentStepError("no", reason="AuthenticationFailed")])
    async with api_client(make_settings(), steps=three_steps(identity=failing)) as (client, _):
        for slug in ("alpha", "bravo", "charlie", "delta"):
            assert (await client.post("/tenants", json={"slug": slug, "name": slug})).status_code == 201
        page = (await client.get("/tenants", params={"limit": 2, "offset": 1, "count": "true"})).json()
        assert [t["slug"] for t in page["items"]] == ["bravo", "charlie"]
        assert page["total"] == 4
        pending = (await client.get("/tenants", params={"status": "pending"})).json()
        assert [t["slug"] for t in pending["items"]] == ["alpha"]
        active = (await client.get("/tenants", params={"status": "active", "count": "true"})).json()
        assert active["total"] == 3
        assert (await client.get("/tenants", params={"status": "weird"})).status_code == 422


async def test_permanent_error_stops_retrying_until_reconcile_is_requested(
    make_settings: Callable[..., Settings],
) -> None:
    identity = ScriptedProvider(
        "group", script=[PermanentStepError("authentik rejected the API token (403)", reason="AuthenticationFailed")]
    )
    async with api_client(make_settings(), steps=three_steps(identity=identity)) as (client, _):
        created = (await client.post("/tenants", json={"slug": "acme", "name": "Acme"})).json()
        assert created["status"] == "pending"
        assert created["provisioningStatus"]["authentik"] == "error"
        assert created["provisioningErrors"]["authentik"] == "authentik rejected the API token (403)"
        condition = created["conditions"]["authentik"]
        assert condition["retryable"] is False
        assert waits_for_a_human(condition)
        assert condition["reason"] == "AuthenticationFailed"
        calls_before = len(identity.calls)
        import asyncio

        await asyncio.sleep(0.4)  # several worker polls: a permanent error is not retried on its own
        assert len(identity.calls) == calls_before
        fixed = (await client.post("/tenants/acme/reconcile")).json()
        assert fixed["status"] == "active"
        assert fixed["provisioningStatus"]["authentik"] == "ok"
        assert len(identity.calls) == calls_before + 1


async def test_transient_errors_retry_by_themselves_with_backoff_and_then_succeed(
    make_settings: Callable[..., Settings],
) -> None:
    identity = ScriptedProvider(
        "group",
        script=[
            TransientStepError("authentik answered 503", reason="UpstreamError"),
            TransientStepError("authentik answered 503", reason="UpstreamError"),
        ],
    )
    async with api_client(make_settings(), steps=three_steps(identity=identity)) as (client, _):
        created = (await client.post("/tenants", json={"slug": "acme", "name": "Acme"})).json()
        assert created["provisioningStatus"]["authentik"] == "error"
        assert created["conditions"]["authentik"]["retryable"] is True
        assert created["conditions"]["authentik"]["nextAttemptAt"] is not None
        body = await wait_for_status(client, "acme", "active")
        assert body["conditions"]["authentik"]["attempts"] == 3
        assert len(identity.calls) == 3


@pytest.mark.slow
async def test_an_active_tenant_whose_step_fails_later_is_degraded_then_recovers(
    make_settings: Callable[..., Settings],
) -> None:
    identity = ScriptedProvider("group")
    async with api_client(make_settings(), steps=three_steps(identity=identity)) as (client, _):
        assert (await client.post("/tenants", json={"slug": "acme", "name": "Acme"})).json()["status"] == "active"
        identity.script.append(PermanentStepError("gone wrong", reason="ValidationFailed"))
        degraded = (await client.post("/tenants/acme/reconcile")).json()
        assert degraded["status"] == "degraded"
        recovered = (await client.post("/tenants/acme/reconcile")).json()
        assert recovered["status"] == "active"
        events = (await client.get("/tenants/acme/events")).json()
        kinds = [e["kind"] for e in events]
        assert "step.failed" in kinds
        assert "tenant.created" in kinds


async def test_patch_bumps_the_generation_and_the_steps_observe_it(make_settings: Callable[..., Settings]) -> None:
    async with api_client(make_settings(), steps=three_steps()) as (client, _):
        await client.post("/tenants", json={"slug": "acme", "name": "Acme"})
        body = (await client.patch("/tenants/acme", json={"quotaBytes": 5 * 1024**3})).json()
        assert body["generation"] == 2
        assert body["quotaBytes"] == 5 * 1024**3
        assert {c["observedGeneration"] for c in body["conditions"].values()} == {2}
        same = (await client.patch("/tenants/acme", json={"quotaBytes": 5 * 1024**3})).json()
        assert same["generation"] == 2
        assert (await client.patch("/tenants/acme", json={"slug": "other"})).status_code == 422


@pytest.mark.slow
async def test_a_pending_step_completes_by_itself(make_settings: Callable[..., Settings]) -> None:
    mail = ScriptedProvider(
        "domain", script=[StepResult(state="pending", reason="WaitingForDkim", message="DKIM keys not generated yet")]
    )
    async with api_client(make_settings(), steps=three_steps(mail=mail)) as (client, _):
        created = (await client.post("/tenants", json={"slug": "acme", "name": "Acme"})).json()
        assert created["provisioningStatus"]["stalwart"] == "pending"
        assert created["conditions"]["stalwart"]["reason"] == "WaitingForDkim"
        done = await wait_for_status(client, "acme", "active")
        assert done["provisioningStatus"]["stalwart"] == "ok"


async def test_unconfigured_steps_are_skipped_with_a_hint(make_settings: Callable[..., Settings]) -> None:
    steps = build_steps(ScriptedProvider("group"), NotConfigured(STALWART_UNSET), NotConfigured(OCIS_UNSET))
    async with api_client(make_settings(), steps=steps) as (client, _):
        body = (await client.post("/tenants", json={"slug": "acme", "name": "Acme"})).json()
    assert body["status"] == "active"
    assert body["provisioningStatus"] == {"authentik": "ok", "stalwart": "skipped", "ocis": "skipped"}
    assert body["conditions"]["stalwart"]["reason"] == "NotConfigured"
    assert "TENANTRY_STALWART_URL" in body["conditions"]["stalwart"]["message"]


async def test_health_and_readiness_name_each_dependency(make_settings: Callable[..., Settings]) -> None:
    steps = build_steps(ScriptedProvider("group"), NotConfigured(STALWART_UNSET), NotConfigured(OCIS_UNSET))
    async with api_client(make_settings(), steps=steps) as (client, _):
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        checks = ready.json()["checks"]
        assert checks["store"]["status"] == "ok"
        assert checks["authentik"]["status"] == "ok"
        assert checks["stalwart"]["status"] == "skipped"
        spec = (await client.get("/openapi.json")).json()
        assert "/tenants/{slug}/reconcile" in spec["paths"]


async def wait_for_status(client: Any, slug: str, status: str, timeout: float = 10.0) -> dict[str, Any]:
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        body: dict[str, Any] = (await client.get(f"/tenants/{slug}")).json()
        if body["status"] == status or loop.time() > deadline:
            assert body["status"] == status, body
            return body
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    "payload",
    [
        {"name": "   "},
        {"name": "bad\x07bell"},
        {"name": "x" * 201},
        {"quotaBytes": 0},
        {"mailDomain": "not a domain"},
        {"slug": "other"},
    ],
)
async def test_patch_with_invalid_input_is_422_and_changes_nothing(
    make_settings: Callable[..., Settings], payload: dict[str, Any]
) -> None:
    async with api_client(make_settings(), steps=three_steps()) as (client, _):
        await client.post("/tenants", json={"slug": "acme", "name": "Acme"})
        response = await client.patch("/tenants/acme", json=payload)
        assert response.status_code == 422, response.text
        shown = (await client.get("/tenants/acme")).json()
        assert shown["name"] == "Acme"
        assert shown["generation"] == 1


async def test_the_worker_leaves_a_new_tenant_to_the_api_that_is_reconciling_it(
    make_settings: Callable[..., Settings],
) -> None:
    import asyncio

    async with api_client(make_settings(), steps=three_steps()) as (client, container):
        claimed: list[str] = []
        claim_due, claim = container.leases.claim_due, container.leases.claim

        async def recording_claim_due(owner: str, limit: int) -> list[str]:
            ids = await claim_due(owner, limit)
            claimed.extend(ids)
            return ids

        async def slow_claim(tenant_id: str, owner: str) -> bool:
            await asyncio.sleep(0.3)  # a busy API process: several worker polls pass before it claims
            return await claim(tenant_id, owner)

        container.leases.claim_due = recording_claim_due  # type: ignore[method-assign]
        container.leases.claim = slow_claim  # type: ignore[method-assign]
        created = await client.post("/tenants", json={"slug": "acme", "name": "Acme"})
        assert created.json()["status"] == "active"
    assert claimed == []


async def test_a_skipped_step_runs_by_itself_once_its_upstream_is_configured(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(resync_interval_seconds=0.3)
    async with api_client(
        settings, steps=build_steps(ScriptedProvider("group"), NotConfigured(STALWART_UNSET), NotConfigured(OCIS_UNSET))
    ) as (client, _):
        body = (await client.post("/tenants", json={"slug": "acme", "name": "Acme"})).json()
        assert body["provisioningStatus"] == {"authentik": "ok", "stalwart": "skipped", "ocis": "skipped"}
    mail = ScriptedProvider("domain")
    # The same store after a restart with Stalwart configured.
    async with api_client(settings, steps=build_steps(ScriptedProvider("group"), mail, NotConfigured(OCIS_UNSET))) as (
        client,
        _,
    ):
        import asyncio

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while (status := (await client.get("/tenants/acme")).json()["provisioningStatus"])["stalwart"] != "ok":
            assert loop.time() < deadline, status
            await asyncio.sleep(0.05)
    assert status == {"authentik": "ok", "stalwart": "ok", "ocis": "skipped"}
    assert len(mail.calls) == 1
