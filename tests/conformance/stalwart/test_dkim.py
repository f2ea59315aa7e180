"""x:DkimSignature and the domain's zone file.

Sources (stalwartlabs/stalwart): tests/src/automation/dkim.rs (automatic keys, selectors, cleanup order:
keys before their domain), tests/src/automation/dns.rs (the records and their BIND text),
crates/jmap/src/registry/mapping/dkim.rs (``validate_dkim_signature``), crates/services/src/task_manager/
dkim.rs (the DkimManagement task), crates/common/src/network/{dkim.rs,dns/records.rs} (public keys, record
order), dns-update ``src/bind.rs`` (``BindSerializer``: TXT values over 255 bytes in parenthesised chunks).
"""

from __future__ import annotations

import base64
import functools
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from tenantry.integrations.stalwart.zone import parse_zone_file
from tests.conformance.stalwart.conftest import Stalwart

ZONE_ORDER = ("dkim", "spf", "mx", "dmarc", "srv", "mta-sts", "tls-rpt", "ua-auto-config", "autoconfig", "autodiscover")


def _ed25519() -> tuple[str, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return pem.decode(), base64.b64encode(raw).decode()


@functools.cache
def _rsa_2048() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    return pem.decode()


def _kind(owner: str, record_type: str, value: str) -> str | None:
    """Which of upstream's record groups a zone line belongs to (None for TLSA, CAA and the like)."""
    first = owner.split(".", 1)[0]
    by_owner = {
        "_dmarc": "dmarc",
        "mta-sts": "mta-sts",
        "_mta-sts": "mta-sts",
        "_smtp": "tls-rpt",
        "ua-auto-config": "ua-auto-config",
        "_ua-auto-config": "ua-auto-config",
        "autoconfig": "autoconfig",
        "autodiscover": "autodiscover",
    }
    if "._domainkey." in owner:
        return "dkim"
    if record_type == "TXT" and value.startswith("v=spf1"):
        return "spf"
    return by_owner.get(first) or {"MX": "mx", "SRV": "srv"}.get(record_type)


async def test_a_manual_key_is_stored_with_its_public_key_and_null_transitions(stalwart: Stalwart) -> None:
    _, domain_id = await stalwart.domain()
    pem, public = _ed25519()
    key = {
        "@type": "Dkim1Ed25519Sha256",
        "domainId": domain_id,
        "selector": "tconf-ed",
        "privateKey": {"@type": "Text", "secret": pem},
    }
    key_id = await stalwart.create("DkimSignature", key)
    got = await stalwart.get("DkimSignature", key_id)
    assert got["publicKey"] == public
    assert got["privateKey"] == {"@type": "Text", "secret": "****"}
    assert (got["stage"], got["expire"], got["nextTransitionAt"]) == ("active", None, None)
    assert got["canonicalization"] == "relaxed/relaxed"
    assert set(got["headers"]) == {"From", "To", "Date", "Subject", "Message-ID"}
    found = await stalwart.call("x:DkimSignature/query", {"filter": {"domainId": domain_id}})
    assert found["ids"] == [key_id]


async def test_a_key_no_signer_can_be_built_from_is_invalid_properties(stalwart: Stalwart) -> None:
    _, domain_id = await stalwart.domain()
    not_a_key = {"@type": "Text", "secret": "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"}
    for kind in ("Dkim1Ed25519Sha256", "Dkim1RsaSha256"):
        value = {"@type": kind, "domainId": domain_id, "selector": "bad", "privateKey": not_a_key}
        refused = await stalwart.refused("DkimSignature", value)
        assert refused["type"] == "invalidProperties"
        assert refused["description"].startswith("Failed to validate DKIM signature")


async def test_a_key_for_a_missing_domain_is_an_invalid_foreign_key(stalwart: Stalwart) -> None:
    _, domain_id = await stalwart.domain()
    await stalwart.call("x:Domain/set", {"destroy": [domain_id]})
    pem, _ = _ed25519()
    value = {"domainId": domain_id, "selector": "orphan", "privateKey": {"@type": "Text", "secret": pem}}
    assert await stalwart.refused("DkimSignature", value) == {
        "type": "invalidForeignKey",
        "objectId": {"object": "Domain", "id": domain_id},
    }


async def test_a_domain_keeps_its_keys_and_is_destroyed_only_after_them(stalwart: Stalwart) -> None:
    _, domain_id = await stalwart.domain()
    pem, _ = _ed25519()
    value = {"domainId": domain_id, "selector": "s1", "privateKey": {"@type": "Text", "secret": pem}}
    key_id = await stalwart.create("DkimSignature", value)
    refused = await stalwart.call("x:Domain/set", {"destroy": [domain_id]})
    assert refused["notDestroyed"][domain_id] == {
        "type": "objectIsLinked",
        "objectId": {"object": "Domain", "id": domain_id},
        "linkedObjects": [{"object": "DkimSignature", "id": key_id}],
    }
    done = await stalwart.calls(
        ["x:DkimSignature/set", {"destroy": [key_id]}, "k"], ["x:Domain/set", {"destroy": [domain_id]}, "d"]
    )
    assert [answer[1]["destroyed"] for answer in done] == [[key_id], [domain_id]]


async def test_automatic_management_makes_one_active_key_per_algorithm_from_the_template(stalwart: Stalwart) -> None:
    _, domain_id = await stalwart.domain(dkimManagement={"@type": "Automatic"})
    keys = await stalwart.wait_for_keys(domain_id, 2)
    today = datetime.now(tz=UTC).strftime("%Y%m%d")
    by_type = {key["@type"]: key for key in keys}
    assert set(by_type) == {"Dkim1Ed25519Sha256", "Dkim1RsaSha256"}
    assert by_type["Dkim1Ed25519Sha256"]["selector"] == f"v1-ed25519-{today}"
    assert by_type["Dkim1RsaSha256"]["selector"] == f"v1-rsa-{today}"
    for key in keys:
        # Without automatic DNS publishing nothing is scheduled: no rotation, no expiry.
        assert (key["stage"], key["nextTransitionAt"], key["expire"]) == ("active", None, None)
        assert key["publicKey"]


async def test_the_zone_file_lists_keys_first_then_upstreams_record_order(stalwart: Stalwart) -> None:
    name, domain_id = await stalwart.domain()
    pem, public = _ed25519()
    value = {"domainId": domain_id, "selector": "tconf", "privateKey": {"@type": "Text", "secret": pem}}
    await stalwart.create("DkimSignature", value)
    zone = (await stalwart.get("Domain", domain_id, ["dnsZoneFile"]))["dnsZoneFile"]
    records = parse_zone_file(zone, name)
    kinds = [_kind(r.name, r.type, r.value) for r in records]
    present = [k for k in dict.fromkeys(kinds) if k is not None]
    assert present == [k for k in ZONE_ORDER if k in present]
    assert kinds[0] == "dkim"
    assert records[0].name == f"tconf._domainkey.{name}."
    assert records[0].value == f"v=DKIM1; k=ed25519; h=sha256; p={public}"
    assert f"ua-auto-config.{name}. IN CNAME " in zone
    [pacc] = [r for r in records if r.name == f"_ua-auto-config.{name}."]
    assert pacc.type == "TXT"
    assert pacc.value.startswith("v=UAAC1; a=sha256; d=")
    assert f'_dmarc.{name}. IN TXT "v=DMARC1; p=reject; rua=mailto:postmaster@{name}"' in zone


@pytest.mark.slow  # an RSA-2048 key
async def test_a_long_rsa_record_is_split_into_parenthesised_chunks_that_read_back_whole(stalwart: Stalwart) -> None:
    name, domain_id = await stalwart.domain()
    value = {
        "@type": "Dkim1RsaSha256",
        "domainId": domain_id,
        "selector": "tconf-rsa",
        "privateKey": {"@type": "Text", "secret": _rsa_2048()},
    }
    key_id = await stalwart.create("DkimSignature", value)
    public = (await stalwart.get("DkimSignature", key_id, ["publicKey"]))["publicKey"]
    text = f"v=DKIM1; k=rsa; h=sha256; p={public}"
    assert len(text) > 255
    zone = (await stalwart.get("Domain", domain_id, ["dnsZoneFile"]))["dnsZoneFile"]
    chunks = "".join(f'    "{text[i : i + 255]}"\n' for i in range(0, len(text), 255))
    assert zone.startswith(f"tconf-rsa._domainkey.{name}. IN TXT (\n{chunks})\n")
    assert parse_zone_file(zone, name)[0].value == text
