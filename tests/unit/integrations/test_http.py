"""The shared HTTP helpers: Retry-After parsing and the client builder."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tenantry.integrations.http import build_http_client, parse_retry_after

NOW = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        ("   ", None),
        (None, None),
        ("inf", None),
        ("nan", None),
    ],
)
def test_retry_after_reads_delta_seconds_and_http_dates(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


async def test_a_private_ca_bundle_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        build_http_client(ca_bundle=tmp_path / "missing.pem")


async def test_the_client_has_the_timeout_it_was_given() -> None:
    async with build_http_client(timeout=3.5) as client:
        assert client.timeout.read == 3.5
        assert client.timeout.connect == 3.5
