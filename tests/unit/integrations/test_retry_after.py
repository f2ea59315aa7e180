"""Retry-After parsing, repeated in each upstream package (so each depends on nothing else): every copy agrees."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from tenantry.integrations import oauth
from tenantry.integrations.authentik import client as authentik_client
from tenantry.integrations.ocis import client as ocis_client
from tenantry.integrations.stalwart import jmap as stalwart_jmap

NOW = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC).timestamp()
Parser = Callable[..., float | None]
COPIES: dict[str, Parser] = {
    "authentik": authentik_client.parse_retry_after,
    "stalwart": stalwart_jmap.parse_retry_after,
    "ocis": ocis_client.parse_retry_after,
    "oauth": oauth.parse_retry_after,
}


@pytest.mark.parametrize("parse", COPIES.values(), ids=COPIES.keys())
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
def test_retry_after_reads_delta_seconds_and_http_dates(
    parse: Parser, header: str | None, seconds: float | None
) -> None:
    assert parse(header, now=NOW) == seconds
