"""Mail domains people own: the platform namespace, proof by DNS before Stalwart, limits on self-service.

The proof is looked up on a real authoritative DNS server on loopback that each test fills itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import Request

from tenantry.auth.actor import Actor
from tenantry.config import Settings
from tenantry.container import Container
from tenantry.integrations.dns import DnsRecord, Purpose
from tenantry.integrations.ports import StepResult
from tenantry.provisioning.steps import build_steps
from tests.support.api import api_client
from tests.support.dns_server import DnsTestServer
from tests.support.fakes import ScriptedProvider

BASE = "mail.example.test"


async def as_caller(request: Request) -> Actor:
    """``Authorization: Bearer admin`` is a platform admin; ``Bearer user:<sub>`` an ordinary person."""
    token = request.headers.get("authorization", "").removeprefix("Bearer ")
    if token == "admin":
        return Actor(sub="root", is_admin=True)
    return Actor(sub=token.removeprefix("user:") or "anonymous", is_admin=False)


ADMIN = {"Authorization": "Bearer admin"}


def user(sub: str) -> dict[str, str]:
    return {"Authorization": f"Bearer user:{sub}"}


@pytest.fixture
async def dns_server() -> AsyncIterator[DnsTestServer]:
    async with DnsTestServer() as server:
        yield server
    assert not server.errors, server.errors


class Stack:
    def __init__(self, client: httpx.AsyncClient, container: Container, mail: ScriptedProvider) -> None:
        self.client, self.container, self.mail = client, container, mail

    async def create(self, headers: dict[str, str], **body: Any) -> httpx.Response:
        return await self.client.post("/tenants", json={"name": body.get("slug", "x"), **body}, headers=headers)

    async def tenant(self, slug: str) -> dict[str, Any]:
        answer = await self.client.get(f"/tenants/{slug}", headers=ADMIN)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def domain(self, slug: str) -> dict[str, Any]:
        body: dict[str, Any] = (await self.client.get(f"/tenants/{slug}/domain", headers=ADMIN)).json()
        return body

    async def wait_for(self, slug: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            body = await self.tenant(slug)
            if predicate(body) or asyncio.get_running_loop().time() > deadline:
                assert predicate(body), body
                return body
            await asyncio.sleep(0.05)

    def created_in_stalwart(self) -> list[str]:
        return [slug for slug, _ids in self.mail.calls]


@pytest.fixture
def stack(make_settings: Callable[..., Settings], dns_server: DnsTestServer) -> Callable[..., Any]:
    def start(**overrides: Any) -> Any:
        settings = make_settings(**{"dns_resolvers": dns_server.nameserver, "dns_timeout_seconds": 0.5, **overrides})
        mail = ScriptedProvider("domain")
        steps = build_steps(ScriptedProvider("group"), mail, ScriptedProvider("drive"))

        class Running:
            async def __aenter__(self) -> Stack:
                self._cm = api_client(settings, steps=steps, actor_resolver=as_caller)
                client, container = await self._cm.__aenter__()
                return Stack(client, container, mail)

            async def __aexit__(self, *exc: object) -> None:
                await self._cm.__aexit__(*exc)

        return Running()

    return start


def publish(server: DnsTestServer, domain: str, token: str) -> None:
    server.set(f"_tenantry-challenge.{domain}.", "TXT", [token])


# -- the namespace and the names Stalwart would refuse ---------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "words"),
    [
        (BASE, "platform's namespace"),
        (f"victim.{BASE}", "belongs to the workspace 'victim'"),
        (f"mail.victim.{BASE}", "belongs to the workspace 'victim'"),
        ("com", "fully qualified"),
        ("co.uk", "public suffix"),
        ("github.io", "public suffix"),
        ("acme.notarealtld", "known top-level domain"),
    ],
)
async def test_names_in_the_platform_namespace_or_that_stalwart_refuses_are_422_and_write_nothing(
    stack: Callable[..., Any], domain: str, words: str
) -> None:
    async with stack() as s:
        answer = await s.create(user("mallory"), slug="mallory", mailDomain=domain)
        assert answer.status_code == 422, answer.text
        (problem,) = answer.json()["detail"]
        assert problem["field"] == "mailDomain"
        assert words in problem["message"]
        assert (await s.client.get("/tenants?count=true", headers=ADMIN)).json()["total"] == 0


async def test_a_taken_slug_is_told_first_even_when_the_mail_domain_is_wrong_too(stack: Callable[..., Any]) -> None:
    async with stack() as s:
        first = await s.create(user("alice"), slug="acme")
        assert first.status_code == 201, first.text
        again = await s.create(user("bob"), slug="acme", mailDomain=f"victim.{BASE}")
        total = (await s.client.get("/tenants?count=true", headers=ADMIN)).json()["total"]

    assert again.status_code == 409, again.text
    assert again.json()["detail"] == "a tenant with slug 'acme' already exists"
    assert total == 1


@pytest.mark.slow
async def test_squatting_a_public_domain_is_held_unverified_and_never_reaches_stalwart(
    stack: Callable[..., Any],
) -> None:
    async with stack() as s:
        for slug, domain in (("mallory", "gmail.com"), ("mallory2", "example.com")):
            answer = await s.create(user(slug), slug=slug, mailDomain=domain)
            assert answer.status_code == 201, answer.text
            body = answer.json()
            assert body["mailDomainStatus"] == "unverified"
            assert body["status"] == "pending"
            mail = body["conditions"]["stalwart"]
            assert (mail["status"], mail["reason"]) == ("pending", "WaitingForDomainVerification")
            assert f"_tenantry-challenge.{domain}." in mail["message"]
        await asyncio.sleep(0.3)  # several check intervals: still nothing created
        assert s.created_in_stalwart() == []
        # Unproven names reserve nothing: the real owner can still sign up with gmail.com.
        assert (await s.create(ADMIN, slug="google", mailDomain="gmail.com")).status_code == 201


async def test_the_victim_still_gets_its_default_domain(stack: Callable[..., Any]) -> None:
    async with stack() as s:
        assert (await s.create(user("mallory"), slug="mallory", mailDomain=f"victim.{BASE}")).status_code == 422
        created = await s.create(user("victim"), slug="victim")
        assert created.status_code == 201, created.text
        body = created.json()
        assert (body["mailDomain"], body["mailDomainStatus"], body["status"]) == (
            f"victim.{BASE}",
            "verified",
            "active",
        )
        assert (await s.domain("victim"))["proof"] == "platform"


# -- proof of ownership -----------------------------------------------------------------------------------


async def test_a_published_challenge_verifies_the_domain_on_demand_and_then_stalwart_gets_it(
    stack: Callable[..., Any], dns_server: DnsTestServer
) -> None:
    async with stack(domain_check_base_seconds=60, domain_check_cap_seconds=60) as s:
        created = await s.create(user("ann"), slug="acme", mailDomain="acme-corp.test")
        assert created.json()["mailDomainStatus"] == "unverified"
        domain = await s.domain("acme")
        challenge = domain["challenge"]
        assert (challenge["type"], challenge["name"]) == ("TXT", "_tenantry-challenge.acme-corp.test.")
        assert len(challenge["value"]) >= 32
        # The challenge is also in the records to publish, and in the zone file.
        dns = (await s.client.get("/tenants/acme/dns", headers=user("ann"))).json()
        assert dns["challenge"]["value"] == challenge["value"]
        zone = (await s.client.get("/tenants/acme/dns?format=zone", headers=user("ann"))).text
        assert challenge["value"] in zone
        # A wrong value is not enough.
        publish(dns_server, "acme-corp.test", "not-the-token")
        still = await s.client.post("/tenants/acme/domain/verify", headers=user("ann"))
        assert still.status_code == 200, still.text
        assert still.json()["status"] == "unverified"
        assert "other values" in still.json()["checkMessage"]
        assert s.created_in_stalwart() == []
        publish(dns_server, "acme-corp.test", challenge["value"])
        verified = await s.client.post("/tenants/acme/domain/verify", headers=user("ann"))
        assert (verified.json()["status"], verified.json()["proof"]) == ("verified", "dns")
        assert verified.json()["challenge"] is None
        body = await s.wait_for("acme", lambda b: b["status"] == "active")
        assert body["provisioningStatus"]["stalwart"] == "ok"
        assert s.created_in_stalwart() == ["acme"]
        events = (await s.client.get("/tenants/acme/events", headers=ADMIN)).json()
        assert any("acme-corp.test verified" in e["message"] for e in events)


@pytest.mark.slow
async def test_the_record_is_also_found_by_the_periodic_check_with_back_off(
    stack: Callable[..., Any], dns_server: DnsTestServer
) -> None:
    async with stack(domain_check_base_seconds=0.05, domain_check_cap_seconds=0.2) as s:
        await s.create(user("ann"), slug="acme", mailDomain="acme-corp.test")
        await asyncio.sleep(0.4)
        checks = (await s.domain("acme"))["checks"]
        assert checks >= 2  # checked again by itself, more than once
        publish(dns_server, "acme-corp.test", (await s.domain("acme"))["challenge"]["value"])
        await s.wait_for("acme", lambda b: b["status"] == "active")
        assert (await s.domain("acme"))["status"] == "verified"


async def test_waits_between_checks_grow_and_are_capped() -> None:
    from tenantry.provisioning.verification import CheckTiming

    timing = CheckTiming(base_seconds=30, cap_seconds=3600)
    assert [timing.after(n) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert timing.after(50) == 3600


async def test_verification_gives_up_after_its_deadline_with_a_clear_state_and_can_start_again(
    stack: Callable[..., Any], dns_server: DnsTestServer
) -> None:
    async with stack(domain_verify_timeout_seconds=0.3) as s:
        await s.create(user("ann"), slug="acme", mailDomain="acme-corp.test")
        body = await s.wait_for("acme", lambda b: b["conditions"]["stalwart"]["status"] == "error")
        mail = body["conditions"]["stalwart"]
        assert (mail["reason"], mail["retryable"]) == ("DomainVerificationExpired", False)
        assert "POST /tenants/acme/domain/verify" in mail["message"]
        assert body["mailDomainStatus"] == "expired"
        publish(dns_server, "acme-corp.test", (await s.domain("acme"))["challenge"]["value"])
        again = await s.client.post("/tenants/acme/domain/verify", headers=user("ann"))
        assert again.json()["status"] == "verified"
        await s.wait_for("acme", lambda b: b["status"] == "active")


@pytest.mark.slow
async def test_of_two_tenants_trying_one_domain_the_first_to_prove_it_wins_and_the_other_is_told(
    stack: Callable[..., Any], dns_server: DnsTestServer
) -> None:
    async with stack(domain_check_base_seconds=60, domain_check_cap_seconds=60) as s:
        assert (await s.create(user("ann"), slug="acme", mailDomain="shared.test")).status_code == 201
        assert (await s.create(user("bob"), slug="bobco", mailDomain="shared.test")).status_code == 201
        publish(dns_server, "shared.test", (await s.domain("acme"))["challenge"]["value"])
        assert (await s.client.post("/tenants/acme/domain/verify", headers=user("ann"))).json()["status"] == "verified"
        told = await s.client.post("/tenants/bobco/domain/verify", headers=user("bob"))
        assert told.json()["status"] == "taken"
        bob = await s.tenant("bobco")
        assert bob["conditions"]["stalwart"]["reason"] == "DomainTaken"
        assert "PATCH /tenants/bobco" in bob["conditions"]["stalwart"]["message"]
        assert s.created_in_stalwart() == ["acme"]
        # Now the name is held: a new tenant asking for it, or a name under it, is refused.
        assert (await s.create(user("carl"), slug="carl", mailDomain="shared.test")).status_code == 409
        under = await s.create(user("carl"), slug="carl", mailDomain="mail.shared.test")
        assert under.status_code == 422
        assert "another workspace has proven" in under.json()["detail"][0]["message"]
        # Bob moves on to a name of his own.
        moved = await s.client.patch("/tenants/bobco", json={"mailDomain": "bob.test"}, headers=user("bob"))
        assert moved.status_code == 200, moved.text
        assert moved.json()["mailDomainStatus"] == "unverified"


async def test_platform_admins_may_skip_the_proof_and_it_is_recorded_ordinary_users_may_not(
    stack: Callable[..., Any],
) -> None:
    async with stack() as s:
        refused = await s.create(user("ann"), slug="acme", mailDomain="acme-corp.test", verify=False)
        assert refused.status_code == 403
        assert "verify" in refused.json()["detail"]
        skipped = await s.create(ADMIN, slug="acme", mailDomain="acme-corp.test", verify=False)
        assert skipped.status_code == 201
        assert (skipped.json()["mailDomainStatus"], skipped.json()["status"]) == ("verified", "active")
        domain = await s.domain("acme")
        assert (domain["proof"], domain["verifiedBy"]) == ("admin", "root")
        events = (await s.client.get("/tenants/acme/events", headers=ADMIN)).json()
        assert any("skipped by platform admin root" in e["message"] and e["actor"] == "root" for e in events)


# -- self-service limits ------------------------------------------------------------------------------------


async def test_an_ordinary_user_may_own_only_so_many_workspaces(stack: Callable[..., Any]) -> None:
    async with stack(self_service_max_tenants=2) as s:
        for slug in ("one", "two"):
            assert (await s.create(user("ann"), slug=slug)).status_code == 201
        third = await s.create(user("ann"), slug="three")
        assert third.status_code == 403
        assert "TENANTRY_SELF_SERVICE_MAX_TENANTS" in third.json()["detail"]
        assert (await s.create(user("bob"), slug="three")).status_code == 201  # per person
        assert (await s.create(ADMIN, slug="four")).status_code == 201  # admins are not limited


async def test_an_ordinary_user_may_create_only_so_many_per_window(stack: Callable[..., Any]) -> None:
    async with stack(self_service_max_tenants=10, self_service_creations=2, self_service_window_seconds=600) as s:
        for slug in ("one", "two"):
            assert (await s.create(user("ann"), slug=slug)).status_code == 201
        third = await s.create(user("ann"), slug="three")
        assert third.status_code == 429
        assert third.json()["error"] == "rate_limited"
        assert "TENANTRY_SELF_SERVICE_CREATIONS" in third.json()["detail"]
        assert 0 < int(third.headers["Retry-After"]) <= 600


# -- live DNS checks ----------------------------------------------------------------------------------------


async def test_dns_checks_report_each_record_and_when_they_were_taken(
    stack: Callable[..., Any], dns_server: DnsTestServer
) -> None:
    domain = f"acme.{BASE}"
    records = (
        DnsRecord("MX", f"{domain}.", f"10 mx.{BASE}.", 3600, Purpose.MX),
        DnsRecord("TXT", f"{domain}.", f"v=spf1 mx include:{BASE} -all", 3600, Purpose.SPF),
        DnsRecord("TXT", f"_dmarc.{domain}.", "v=DMARC1; p=reject", 3600, Purpose.DMARC),
    )
    async with stack() as s:
        s.mail.script.append(StepResult("ok", "Ready", "domain in place", ids={"domainId": "d1"}, dns_records=records))
        await s.create(ADMIN, slug="acme")
        before = (await s.client.get("/tenants/acme/dns", headers=ADMIN)).json()
        assert before["check"] is None
        dns_server.set(f"{domain}.", "MX", [f"10 mx.{BASE}."])
        dns_server.set(f"{domain}.", "TXT", ["v=spf1 mx -all", "v=spf1 include:other.example -all"])
        checked = (await s.client.get("/tenants/acme/dns?check=now", headers=ADMIN)).json()["check"]
        states = {(r["purpose"], r["state"], r["severity"]) for r in checked["records"]}
        assert states == {("MX", "ok", "critical"), ("SPF", "conflicting", "critical"), ("DMARC", "missing", "warning")}
        assert checked["mailFlows"] is False
        assert checked["checkedAt"]
        # Stored: a plain GET shows the same check, with its time.
        again = (await s.client.get("/tenants/acme/dns", headers=ADMIN)).json()["check"]
        assert again == checked
