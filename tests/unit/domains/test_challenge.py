"""The ownership challenge: a per-tenant token in a TXT record at _tenantry-challenge.<domain>, checked live."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tenantry.domains.checks import (
    challenge_name,
    challenge_published,
    challenge_record,
    new_challenge_token,
)
from tenantry.domains.resolver import DnsLookupError, Resolver
from tests.support.dns_server import DnsTestServer

NOW = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
TOKEN = "q3Jd0v6w5bX8oB0rj6mR2Yt1kqQdE7dC8i0uS1xZk2M"


def test_the_challenge_name_is_absolute_ascii_and_lowercase() -> None:
    assert challenge_name("Acme.Test.") == "_tenantry-challenge.acme.test."
    assert challenge_name("Bücher.de") == "_tenantry-challenge.xn--bcher-kva.de."


def test_tokens_carry_at_least_128_bits_and_are_safe_in_txt() -> None:
    tokens = {new_challenge_token() for _ in range(50)}
    assert len(tokens) == 50
    assert all(len(t) >= 22 and t.replace("-", "").replace("_", "").isalnum() for t in tokens)


def test_the_record_to_publish() -> None:
    record = challenge_record("acme.test", TOKEN)
    assert (record.type, record.name, record.value, record.purpose) == (
        "TXT",
        "_tenantry-challenge.acme.test.",
        TOKEN,
        "OTHER",
    )


async def test_a_published_token_is_found_among_other_txt_records(
    dns_server: DnsTestServer, resolver: Resolver
) -> None:
    dns_server.set("_tenantry-challenge.acme.test.", "TXT", ["old-token", f" {TOKEN} "])
    result = await challenge_published(resolver, "acme.test", TOKEN, clock=lambda: NOW)
    assert (result.found, result.name, result.checked_at) == (True, "_tenantry-challenge.acme.test.", NOW)
    assert sorted(result.values) == sorted(["old-token", f" {TOKEN} "])


async def test_an_absent_record_is_not_found_and_says_what_to_publish(resolver: Resolver) -> None:
    result = await challenge_published(resolver, "acme.test", TOKEN)
    assert (result.found, result.values) == (False, ())
    assert f'Publish: _tenantry-challenge.acme.test. TXT "{TOKEN}"' in result.message


async def test_another_token_is_not_found_and_is_shown(dns_server: DnsTestServer, resolver: Resolver) -> None:
    dns_server.set("_tenantry-challenge.acme.test.", "TXT", [TOKEN[:-1], TOKEN.upper()])
    result = await challenge_published(resolver, "acme.test", TOKEN)
    assert result.found is False
    assert sorted(result.values) == sorted([TOKEN[:-1], TOKEN.upper()])
    assert "hold other values" in result.message


async def test_a_failing_lookup_is_an_error_not_an_absent_record(dns_server: DnsTestServer, resolver: Resolver) -> None:
    dns_server.fail("_tenantry-challenge.acme.test.")
    with pytest.raises(DnsLookupError, match="SERVFAIL"):
        await challenge_published(resolver, "acme.test", TOKEN)


async def test_an_empty_token_is_refused(resolver: Resolver) -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        await challenge_published(resolver, "acme.test", "")
