"""Upstream failures, rejected credentials, conflicts and drift, end to end against the sandboxes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from tenantry.config import Settings
from tenantry.container import Container
from tenantry.sandbox.faults import SandboxControls
from tenantry.sandbox.suite import SandboxSuite
from tests.support.api import api_client
from tests.support.stack import sandbox_suite, step_is, tenant_events, wait_for_tenant, waits_for_a_human

pytestmark = pytest.mark.slow  # the whole product in-process, waiting out retries, back-off and resyncs

ACME = {"slug": "acme", "name": "Acme Corp"}
# The requests each step's ensure starts with, and so the ones a fault on it hits first.
API_PATHS = {"authentik": r"^/api/v3/", "stalwart": r"^/jmap/?$", "ocis": r"^/graph/"}


def controls_of(suite: SandboxSuite, upstream: str) -> SandboxControls:
    controls: SandboxControls = {
        "authentik": suite.authentik.controls,
        "stalwart": suite.stalwart.controls,
        "ocis": suite.ocis.controls,
    }[upstream]
    return controls


def api_requests(suite: SandboxSuite, upstream: str) -> int:
    return len(controls_of(suite, upstream).requests(path=API_PATHS[upstream]))


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def count_worker_polls(container: Container) -> list[int]:
    """Counts the worker's claims of due tenants from now on (one per poll), in a one-element list."""
    polls = [0]
    claim_due = container.leases.claim_due

    async def counted(owner: str, limit: int) -> list[str]:
        polls[0] += 1
        return await claim_due(owner, limit)

    container.leases.claim_due = counted  # type: ignore[method-assign]
    return polls


async def wait_for_polls(polls: list[int], more: int, *, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    target, deadline = polls[0] + more, loop.time() + timeout
    while polls[0] < target:
        assert loop.time() < deadline, f"the worker polled {polls[0]} times, expected {target}"
        await asyncio.sleep(0.01)


# -- transient upstream errors ---------------------------------------------------------------------


@pytest.mark.parametrize("upstream", ["authentik", "stalwart", "ocis"])
async def test_two_503s_are_retried_until_the_step_is_ok_without_any_manual_action(
    make_settings: Callable[..., Settings], upstream: str
) -> None:
    suite = sandbox_suite()
    controls_of(suite, upstream).fail(API_PATHS[upstream], 503, times=2)
    # A backoff well above the worker's poll keeps the first answer on the first failed attempt.
    settings = make_settings(**suite.settings(), retry_base_seconds=0.4, retry_cap_seconds=1.0)
    async with api_client(settings, transports=suite.transports()) as (client, _):
        created = await client.post("/tenants", json=ACME)
        assert created.status_code == 201, created.text
        failing = created.json()["conditions"][upstream]
        final = await wait_for_tenant(client, "acme", lambda b: b["status"] == "active", what="active")

    assert failing["status"] == "error"
    assert failing["retryable"] is True
    assert failing["reason"] == "UpstreamError"
    assert "503" in failing["message"]
    assert at(failing["nextAttemptAt"]) > at(failing["lastAttemptAt"])
    assert created.json()["status"] == "pending"
    done = final["conditions"][upstream]
    # authentik's group is created first; a create answered 5xx is re-read at once (it may have been applied),
    # so the second 503 is spent within the first attempt.
    attempts = 2 if upstream == "authentik" else 3
    assert (done["status"], done["attempts"], done["retryable"]) == ("ok", attempts, True)
    assert final["provisioningErrors"] == {}
    assert len([r for r in controls_of(suite, upstream).requests() if r.status == 503]) == 2


async def test_an_authentik_429_retry_after_puts_the_next_attempt_at_least_that_far_away(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    suite.authentik.controls.fail(API_PATHS["authentik"], 429, times=1, retry_after=1)
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, _):
        created = await client.post("/tenants", json=ACME)
        assert created.status_code == 201, created.text
        limited = created.json()["conditions"]["authentik"]
        final = await wait_for_tenant(client, "acme", step_is("authentik", "ok"), what="authentik ok")

    assert (limited["status"], limited["reason"], limited["retryable"]) == ("error", "RateLimited", True)
    assert "429" in limited["message"]
    # Without the hint the first retry would come after at most retry_base_seconds (0.05 s).
    assert at(limited["nextAttemptAt"]) - at(limited["lastAttemptAt"]) >= timedelta(seconds=1)
    assert at(final["conditions"]["authentik"]["lastAttemptAt"]) >= at(limited["nextAttemptAt"])
    assert final["conditions"]["authentik"]["attempts"] == 2


# -- rejected credentials --------------------------------------------------------------------------


async def test_a_rejected_authentik_token_stops_retrying_and_reconcile_tries_exactly_once_more(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    settings = make_settings(**{**suite.settings(), "authentik_token": "not-the-token"})
    async with api_client(settings, transports=suite.transports()) as (client, container):
        polls = count_worker_polls(container)
        created = await client.post("/tenants", json=ACME)
        assert created.status_code == 201, created.text
        stopped = created.json()["conditions"]["authentik"]
        sent = api_requests(suite, "authentik")
        await wait_for_polls(polls, 5)
        after_polls = api_requests(suite, "authentik")

        again = await client.post("/tenants/acme/reconcile")
        assert again.status_code == 200, again.text
        after_reconcile = api_requests(suite, "authentik")
        await wait_for_polls(polls, 5)
        after_more_polls = api_requests(suite, "authentik")

    assert (stopped["status"], stopped["reason"], stopped["retryable"]) == ("error", "AuthenticationFailed", False)
    assert "authentik" in stopped["message"]
    assert "TENANTRY_AUTHENTIK_TOKEN" in stopped["message"]
    assert "not-the-token" not in stopped["message"]
    assert waits_for_a_human(stopped)
    assert created.json()["provisioningErrors"]["authentik"] == stopped["message"]
    assert sent == 1
    assert after_polls == sent
    retried = again.json()["conditions"]["authentik"]
    assert (retried["status"], retried["retryable"], retried["attempts"]) == ("error", False, 2)
    assert after_reconcile == sent + 1
    assert after_more_polls == after_reconcile
    assert suite.authentik.groups() == []


async def test_a_rejected_stalwart_api_key_is_a_permanent_error_naming_stalwart(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    settings = make_settings(**{**suite.settings(), "stalwart_api_key": "API_not-the-key"})
    async with api_client(settings, transports=suite.transports()) as (client, _):
        created = await client.post("/tenants", json=ACME)

    assert created.status_code == 201, created.text
    body = created.json()
    mail = body["conditions"]["stalwart"]
    assert (mail["status"], mail["reason"], mail["retryable"]) == ("error", "AuthenticationFailed", False)
    assert "Stalwart rejected the API key" in mail["message"]
    assert "TENANTRY_STALWART_API_KEY" in mail["message"]
    assert "not-the-key" not in mail["message"]
    assert waits_for_a_human(mail)
    assert (body["status"], body["provisioningStatus"]["authentik"], body["provisioningStatus"]["ocis"]) == (
        "pending",
        "ok",
        "ok",
    )
    assert suite.stalwart.domains() == []


async def test_a_wrong_ocis_app_token_stops_with_a_message_naming_ocis_and_the_setting(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    settings = make_settings(**{**suite.settings(), "ocis_app_token": "not-the-app-token"})
    async with api_client(settings, transports=suite.transports()) as (client, _):
        created = await client.post("/tenants", json=ACME)

    assert created.status_code == 201, created.text
    files = created.json()["conditions"]["ocis"]
    assert (files["status"], files["reason"], files["retryable"]) == ("error", "AuthenticationFailed", False)
    assert "oCIS rejected the credentials (401)" in files["message"]
    assert "TENANTRY_OCIS_APP_TOKEN" in files["message"]
    assert "not-the-app-token" not in files["message"]
    assert waits_for_a_human(files)
    assert suite.ocis.spaces() == []


# -- conflicts and races ---------------------------------------------------------------------------


async def test_a_same_named_group_that_is_not_ours_is_a_name_conflict_and_no_group_is_created(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    foreign = suite.authentik.add_group("tenant-acme", {"team": "marketing"})
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, _):
        created = await client.post("/tenants", json=ACME)

    assert created.status_code == 201, created.text
    identity = created.json()["conditions"]["authentik"]
    assert (identity["status"], identity["reason"], identity["retryable"]) == ("error", "NameConflict", False)
    assert "tenant-acme" in identity["message"]
    assert foreign["pk"] in identity["message"]
    assert identity["upstreamIds"] == {}
    assert created.json()["status"] == "pending"
    assert suite.authentik.groups() == [foreign]
    # The create goes first and is refused for the taken name; the name lookup then finds it is not ours.
    assert [r.status for r in suite.authentik.controls.requests("POST", r"/core/groups/$")] == [400]
    assert suite.authentik.controls.requests("PATCH") == []


async def test_two_concurrent_creates_of_one_slug_give_one_201_one_409_and_a_single_group(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    suite.authentik.insert_delay = 0.2  # a slow group insert, as under load
    settings = make_settings(**suite.settings())
    # Two API processes on one database, as two replicas behind a load balancer.
    async with (
        api_client(settings, transports=suite.transports()) as (first, _),
        api_client(settings, transports=suite.transports()) as (second, _),
    ):
        answers = await asyncio.gather(
            first.post("/tenants", json=ACME), second.post("/tenants", json={**ACME, "name": "Acme Rival"})
        )
        final = await wait_for_tenant(first, "acme", lambda b: b["status"] == "active", what="active")
        listed = (await second.get("/tenants", params={"count": "true"})).json()

    assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
    refused = next(a for a in answers if a.status_code == 409).json()
    assert refused["error"] == "conflict"
    assert "acme" in refused["detail"]
    winner = next(a for a in answers if a.status_code == 201).json()
    assert listed["total"] == 1
    assert [t["name"] for t in listed["items"]] == [winner["name"]]
    groups = [g for g in suite.authentik.groups() if g["name"] == "tenant-acme"]
    assert len(groups) == 1
    assert groups[0]["pk"] == final["conditions"]["authentik"]["upstreamIds"]["groupPk"]
    assert groups[0]["attributes"]["tenant_id"] == final["id"]
    assert len(suite.authentik.controls.requests("POST", r"/core/groups/$")) == 1


# -- drift -----------------------------------------------------------------------------------------


async def test_a_group_deleted_out_of_band_is_recreated_on_resync_and_the_repair_is_in_the_events(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    settings = make_settings(**suite.settings(), resync_interval_seconds=0.3)
    async with api_client(settings, transports=suite.transports()) as (client, _):
        created = await client.post("/tenants", json=ACME)
        assert created.json()["status"] == "active", created.text
        lost = created.json()["conditions"]["authentik"]["upstreamIds"]["groupPk"]
        suite.authentik.delete_group(lost)

        repaired = await wait_for_tenant(
            client,
            "acme",
            lambda b: b["conditions"]["authentik"]["upstreamIds"].get("groupPk") not in (None, lost),
            what="a new group pk",
        )
        events = await tenant_events(client, "acme")

    new_pk = repaired["conditions"]["authentik"]["upstreamIds"]["groupPk"]
    group = suite.authentik.get_group(new_pk)
    assert group is not None
    assert (group["name"], group["attributes"]["tenant_id"]) == ("tenant-acme", repaired["id"])
    assert [g["pk"] for g in suite.authentik.groups()] == [new_pk]
    assert repaired["status"] == "active"
    notes = [e["message"] for e in events if e["step"] == "authentik" and e["kind"] == "step.change"]
    assert any(lost in note and "deleted out of band" in note and new_pk in note for note in notes), notes


async def test_a_space_deleted_out_of_band_is_recreated_on_resync_and_the_repair_is_in_the_events(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    settings = make_settings(**suite.settings(), resync_interval_seconds=0.3)
    async with api_client(settings, transports=suite.transports()) as (client, _):
        created = await client.post("/tenants", json={**ACME, "quotaBytes": 5 * 1024**3})
        assert created.json()["status"] == "active", created.text
        lost = created.json()["conditions"]["ocis"]["upstreamIds"]["driveId"]
        suite.ocis.delete_space(lost)

        repaired = await wait_for_tenant(
            client,
            "acme",
            lambda b: b["conditions"]["ocis"]["upstreamIds"].get("driveId") not in (None, lost),
            what="a new drive id",
        )
        events = await tenant_events(client, "acme")

    new_id = repaired["conditions"]["ocis"]["upstreamIds"]["driveId"]
    space = suite.ocis.get_space(new_id)
    assert space is not None
    assert (space["name"], space["quota"]["total"]) == ("Acme Corp", 5 * 1024**3)
    assert [s["id"] for s in suite.ocis.spaces()] == [new_id]
    assert repaired["status"] == "active"
    notes = [e["message"] for e in events if e["step"] == "ocis" and e["kind"] == "step.change"]
    assert any(lost in note and "deleted out of band" in note and new_id in note for note in notes), notes


async def test_concurrent_reconcile_requests_for_one_tenant_never_run_at_once_or_create_twice(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    # Long retries: only the explicit reconcile requests below may attempt the failed step again.
    settings = make_settings(**suite.settings(), retry_base_seconds=60, retry_cap_seconds=60)
    suite.ocis.controls.fail(r"^/graph/v1\.0/drives$", 503, method="POST", times=1)
    suite.ocis.controls.latency_ms = 100  # widen the window in which two runs could overlap
    async with api_client(settings, transports=suite.transports()) as (client, _):
        created = (await client.post("/tenants", json={"slug": "acme", "name": "Acme Corp"})).json()
        assert created["provisioningStatus"]["ocis"] == "error"
        first, second = await asyncio.gather(
            client.post("/tenants/acme/reconcile"), client.post("/tenants/acme/reconcile")
        )
        assert first.status_code == second.status_code == 200
        body = (await client.get("/tenants/acme")).json()
    creates = suite.ocis.controls.requests("POST", r"^/graph/v1\.0/drives$")
    assert [r.status for r in creates] == [503, 201]
    assert len(suite.ocis.spaces()) == 1
    assert body["conditions"]["ocis"]["upstreamIds"]["driveId"] == suite.ocis.spaces()[0]["id"]
