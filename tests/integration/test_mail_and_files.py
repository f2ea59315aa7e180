"""Mail domains and DNS records on Stalwart, project spaces on oCIS: the API end to end against the sandboxes."""

from __future__ import annotations

from collections.abc import Callable

import dns.rdatatype
import dns.rdtypes.txtbase
import dns.zone
import pytest

from tenantry.config import Settings
from tenantry.integrations.dns import Purpose
from tenantry.sandbox.suite import SandboxSuite
from tenantry.tenants.models import TenantStep
from tests.support.api import api_client
from tests.support.dns_server import DnsTestServer
from tests.support.stack import sandbox_suite, tenant_events, wait_for_tenant

pytestmark = pytest.mark.slow  # the whole product in-process, polling each tenant until its steps settle

ACME = {"slug": "acme", "name": "Acme Corp"}
ACME_DOMAIN = "acme.mail.example.test"


def stalwart_api_calls(suite: SandboxSuite) -> int:
    return len(suite.stalwart.controls.requests("POST", r"^/jmap/?$"))


# -- Stalwart ----------------------------------------------------------------------------------------


async def test_the_mail_step_waits_for_dkim_keys_then_turns_ok_and_the_tenant_active_by_itself(
    make_settings: Callable[..., Settings],
) -> None:
    suite = SandboxSuite(
        authentik_url="http://authentik.test",
        stalwart_url="http://stalwart.test",
        ocis_url="http://ocis.test",
        dkim_delay=0.5,
    )
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, _):
        created = await client.post("/tenants", json=ACME)
        assert created.status_code == 201, created.text
        early_dns = (await client.get("/tenants/acme/dns")).json()
        final = await wait_for_tenant(client, "acme", lambda b: b["status"] == "active", what="active")
        events = await tenant_events(client, "acme")

    waiting = created.json()["conditions"]["stalwart"]
    assert (waiting["status"], waiting["reason"], waiting["retryable"]) == ("pending", "WaitingForDkim", True)
    assert ACME_DOMAIN in waiting["message"]
    assert waiting["nextAttemptAt"] is not None
    assert created.json()["status"] == "pending"
    assert (early_dns["status"], early_dns["records"]) == ("pending", [])
    ready = final["conditions"]["stalwart"]
    assert (ready["status"], ready["reason"]) == ("ok", "Ready")
    assert ready["upstreamIds"] == waiting["upstreamIds"]
    mail_kinds = [e["kind"] for e in events if e["step"] == "stalwart" and e["kind"] != "step.change"]
    assert mail_kinds[0] == "step.pending"
    assert mail_kinds[-1] == "step.ok"
    assert "step.failed" not in mail_kinds
    assert [e["kind"] for e in events].count("tenant.active") == 1
    assert [d["name"] for d in suite.stalwart.domains()] == [ACME_DOMAIN]


async def test_a_domain_created_out_of_band_is_adopted_rather_than_created_again(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    existing = suite.stalwart.add_domain(ACME_DOMAIN)
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, _):
        created = await client.post("/tenants", json=ACME)
        events = await tenant_events(client, "acme")

    assert created.status_code == 201, created.text
    mail = created.json()["conditions"]["stalwart"]
    assert mail["status"] == "ok"
    assert mail["upstreamIds"] == {"domainId": existing}
    assert [(d["id"], d["name"]) for d in suite.stalwart.domains()] == [(existing, ACME_DOMAIN)]
    assert any(
        e["step"] == "stalwart" and "Adopted existing Stalwart domain" in e["message"] and existing in e["message"]
        for e in events
    ), events


async def test_dns_records_come_as_json_and_as_a_zone_file_that_dnspython_reads(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, _):
        assert (await client.post("/tenants", json=ACME)).status_code == 201
        as_json = await client.get("/tenants/acme/dns")
        as_zone = await client.get("/tenants/acme/dns", params={"format": "zone"})

    assert as_json.status_code == 200, as_json.text
    body = as_json.json()
    assert (body["domain"], body["status"]) == (ACME_DOMAIN, "ok")
    records = body["records"]
    assert {r["type"] for r in records} >= {"MX", "TXT", "CNAME", "SRV"}
    assert {"MX", "SPF", "DKIM", "DMARC"} <= {r["purpose"] for r in records}
    assert all(r["purpose"] in {p.value for p in Purpose} for r in records)
    assert all(isinstance(r["ttl"], int) and r["ttl"] > 0 for r in records)
    mx = next(r for r in records if r["purpose"] == "MX")
    assert (mx["type"], mx["name"]) == ("MX", f"{ACME_DOMAIN}.")
    # Everything is under the tenant's domain but the mail host's own SPF record, wherever that host lives.
    mail_host = mx["value"].split()[1]
    assert all(
        r["name"].endswith(f"{ACME_DOMAIN}.") or (r["name"], r["purpose"]) == (mail_host, "SPF") for r in records
    )
    dkim = {r["name"]: r["value"] for r in records if r["purpose"] == "DKIM"}
    assert dkim
    assert all(r["type"] == "TXT" for r in records if r["purpose"] == "DKIM")
    assert all(name.split(".")[1] == "_domainkey" and value.startswith("v=DKIM1;") for name, value in dkim.items())

    assert as_zone.status_code == 200
    assert as_zone.headers["content-type"].startswith("text/dns")
    zone = dns.zone.from_text(as_zone.text, origin=f"{ACME_DOMAIN}.", relativize=False, check_origin=False)
    in_zone = {
        (name.to_text(), dns.rdatatype.to_text(rdataset.rdtype), rdataset.ttl)
        for name, rdataset in zone.iterate_rdatasets()
    }
    # dnspython keeps only names inside the origin; an outside one (the mail host's SPF) is written absolute.
    assert in_zone == {(r["name"], r["type"], r["ttl"]) for r in records if r["name"].endswith(f"{ACME_DOMAIN}.")}
    outside = [r for r in records if not r["name"].endswith(f"{ACME_DOMAIN}.")]
    assert all(f'{r["name"]} {r["ttl"]} IN TXT "{r["value"]}"' in as_zone.text for r in outside)
    zone_dkim = {
        name.to_text(): b"".join(rdata.strings).decode()
        for name, _ttl, rdata in zone.iterate_rdatas("TXT")
        if "_domainkey" in name.to_text() and isinstance(rdata, dns.rdtypes.txtbase.TXTBase)
    }
    assert zone_dkim == dkim


async def test_a_custom_internationalised_mail_domain_is_stored_and_created_in_ascii(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, _):
        created = await client.post("/tenants", json={**ACME, "mailDomain": "Mail.Bücher.test", "verify": False})
        dns_records = (await client.get("/tenants/acme/dns")).json()

    assert created.status_code == 201, created.text
    body = created.json()
    assert body["mailDomain"] == "mail.xn--bcher-kva.test"
    assert body["status"] == "active"
    assert [d["name"] for d in suite.stalwart.domains()] == ["mail.xn--bcher-kva.test"]
    assert dns_records["domain"] == "mail.xn--bcher-kva.test"
    mail_host = next(r["value"].split()[1] for r in dns_records["records"] if r["purpose"] == "MX")
    assert all(
        r["name"].endswith("mail.xn--bcher-kva.test.") or (r["name"], r["purpose"]) == (mail_host, "SPF")
        for r in dns_records["records"]
    )


async def test_a_mail_domain_another_tenant_holds_is_refused_with_409_and_nothing_is_written(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, _):
        first = await client.post("/tenants", json={**ACME, "mailDomain": "mail.bücher.test", "verify": False})
        assert first.status_code == 201, first.text
        domains_before, calls_before = suite.stalwart.domains(), stalwart_api_calls(suite)
        groups_before, spaces_before = suite.authentik.groups(), suite.ocis.spaces()

        # The same domain written differently: upper case, Unicode form, trailing dot.
        second = await client.post(
            "/tenants", json={"slug": "rival", "name": "Rival", "mailDomain": "MAIL.BÜCHER.TEST."}
        )
        listed = (await client.get("/tenants", params={"count": "true"})).json()
        rival = await client.get("/tenants/rival")

    assert second.status_code == 409, second.text
    assert second.json()["error"] == "conflict"
    assert "mail.xn--bcher-kva.test" in second.json()["detail"]
    assert listed["total"] == 1
    assert rival.status_code == 404
    assert suite.stalwart.domains() == domains_before
    assert stalwart_api_calls(suite) == calls_before
    assert (suite.authentik.groups(), suite.ocis.spaces()) == (groups_before, spaces_before)


async def test_a_custom_domain_existing_in_stalwart_unmarked_is_a_conflict_and_is_left_untouched(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    foreign = suite.stalwart.add_domain("shop.example.org", description="Customer X production")
    before = suite.stalwart.domains()
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, _):
        created = await client.post("/tenants", json={**ACME, "mailDomain": "shop.example.org", "verify": False})

    assert created.status_code == 201, created.text
    mail = created.json()["conditions"]["stalwart"]
    assert (mail["status"], mail["reason"], mail["retryable"]) == ("error", "DomainConflict", False)
    assert foreign in mail["message"]
    assert f"tenantry:tenant:{created.json()['id']}" in mail["message"]
    assert mail["upstreamIds"] == {}
    assert suite.stalwart.domains() == before


async def test_a_domain_on_manual_dkim_without_keys_stops_the_mail_step_instead_of_waiting(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    suite.stalwart.add_domain(ACME_DOMAIN, dkimManagement={"@type": "Manual"})
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, _):
        created = await client.post("/tenants", json=ACME)

    assert created.status_code == 201, created.text
    mail = created.json()["conditions"]["stalwart"]
    assert (mail["status"], mail["reason"], mail["retryable"]) == ("error", "DkimNotManaged", False)
    assert "switch its DKIM management to Automatic" in mail["message"]
    assert created.json()["status"] == "pending"


# -- oCIS --------------------------------------------------------------------------------------------


async def test_the_space_is_created_with_the_quota_the_tenant_asked_for(make_settings: Callable[..., Settings]) -> None:
    suite = sandbox_suite()
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, _):
        created = await client.post("/tenants", json={**ACME, "quotaBytes": 3 * 1024**3})

    assert created.status_code == 201, created.text
    assert created.json()["quotaBytes"] == 3 * 1024**3
    files = created.json()["conditions"]["ocis"]
    assert (files["status"], files["reason"]) == ("ok", "Created")
    space = suite.ocis.get_space(files["upstreamIds"]["driveId"])
    assert space is not None
    assert (space["name"], space["driveType"], space["quota"]["total"]) == ("Acme Corp", "project", 3 * 1024**3)
    assert created.json()["id"] in space["description"]


async def test_patching_quota_bytes_resizes_the_space_on_the_next_reconcile(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, _):
        created = await client.post("/tenants", json={**ACME, "quotaBytes": 1024**3})
        drive_id = created.json()["conditions"]["ocis"]["upstreamIds"]["driveId"]
        patched = await client.patch("/tenants/acme", json={"quotaBytes": 7 * 1024**3})

    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["generation"], body["quotaBytes"], body["status"]) == (2, 7 * 1024**3, "active")
    files = body["conditions"]["ocis"]
    assert (files["status"], files["observedGeneration"]) == ("ok", 2)
    assert files["upstreamIds"] == {"driveId": drive_id}
    space = suite.ocis.get_space(drive_id)
    assert space is not None
    assert space["quota"]["total"] == 7 * 1024**3
    assert len(suite.ocis.spaces()) == 1


async def test_patching_the_name_renames_the_space_with_forbidden_characters_replaced(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, _):
        created = await client.post("/tenants", json=ACME)
        drive_id = created.json()["conditions"]["ocis"]["upstreamIds"]["driveId"]
        patched = await client.patch("/tenants/acme", json={"name": 'Acme: R&D / "Files"?'})

    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == 'Acme: R&D / "Files"?'
    assert patched.json()["conditions"]["ocis"]["status"] == "ok"
    space = suite.ocis.get_space(drive_id)
    assert space is not None
    assert space["name"] == "Acme R&D Files"


async def test_a_lost_drive_id_is_found_again_by_our_marker_never_by_the_space_name(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    # Someone else's space with the very name the tenant's space will get, created first.
    decoy = suite.ocis.add_space("Acme Corp", description="Marketing's own files", quota=10**6)
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, container):
        created = await client.post("/tenants", json=ACME)
        assert created.status_code == 201, created.text
        ours = created.json()["conditions"]["ocis"]["upstreamIds"]["driveId"]
        # The stored id is lost (say, a restore from an old backup).
        async with container.sessionmaker() as session, session.begin():
            row = await session.get(TenantStep, (created.json()["id"], "ocis"))
            assert row is not None
            row.outputs = {}
        reconciled = await client.post("/tenants/acme/reconcile")
        events = await tenant_events(client, "acme")

    assert ours != decoy["id"]
    assert created.json()["conditions"]["ocis"]["reason"] == "Created"
    files = reconciled.json()["conditions"]["ocis"]
    assert (files["status"], files["reason"], files["upstreamIds"]) == ("ok", "Adopted", {"driveId": ours})
    assert sorted(s["id"] for s in suite.ocis.spaces()) == sorted([decoy["id"], ours])
    assert suite.ocis.get_space(decoy["id"]) == decoy
    assert any(e["step"] == "ocis" and f"adopted existing space {ours}" in e["message"] for e in events), events


async def test_a_mail_domain_can_be_corrected_until_one_is_provisioned(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    async with (
        DnsTestServer() as dns_server,  # answers, without the ownership record
        api_client(
            make_settings(**suite.settings(), dns_resolvers=dns_server.nameserver), transports=suite.transports()
        ) as (client, _),
    ):
        created = (
            await client.post("/tenants", json={"slug": "acme", "name": "Acme", "mailDomain": "mail.acme.test"})
        ).json()
        mail = created["conditions"]["stalwart"]
        assert (mail["status"], mail["reason"]) == ("pending", "WaitingForDomainVerification"), mail
        assert suite.stalwart.domains() == []

        fixed = await client.patch("/tenants/acme", json={"mailDomain": "Mail.Acme-Corp.Test", "verify": False})
        assert fixed.status_code == 200, fixed.text
        body = await wait_for_tenant(client, "acme", lambda b: b["status"] == "active", what="active")
        assert (body["mailDomain"], body["mailDomainStatus"]) == ("mail.acme-corp.test", "verified")
        assert [d["name"] for d in suite.stalwart.domains()] == ["mail.acme-corp.test"]

        again = await client.patch("/tenants/acme", json={"mailDomain": "other.acme.test"})
        assert again.status_code == 409
        assert "already provisioned" in again.json()["detail"]
        shown = (await client.get("/tenants/acme")).json()
    assert shown["mailDomain"] == "mail.acme-corp.test"
    assert shown["generation"] == 2


async def test_a_mail_domain_cannot_be_changed_to_one_another_tenant_holds(
    make_settings: Callable[..., Settings],
) -> None:
    suite = sandbox_suite()
    async with api_client(make_settings(**suite.settings()), transports=suite.transports()) as (client, _):
        await client.post(
            "/tenants", json={"slug": "first", "name": "First", "mailDomain": "mail.first.test", "verify": False}
        )
        await client.post("/tenants", json={"slug": "second", "name": "Second", "mailDomain": "mail.second.test"})
        taken = await client.patch("/tenants/second", json={"mailDomain": "mail.first.test"})
        shown = (await client.get("/tenants/second")).json()
    assert taken.status_code == 409
    assert shown["mailDomain"] == "mail.second.test"
    assert shown["generation"] == 1
