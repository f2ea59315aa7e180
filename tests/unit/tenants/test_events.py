"""The timeline: append-only, paged by cursor, exported as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from tenantry.config import Settings
from tenantry.provisioning.steps import build_steps
from tenantry.tenants.presenter import events_csv
from tenantry.tenants.schemas import TenantEventOut
from tests.support.api import api_client
from tests.support.fakes import ScriptedProvider


def steps() -> list:  # type: ignore[type-arg]
    return build_steps(ScriptedProvider("group"), ScriptedProvider("domain"), ScriptedProvider("drive"))


@pytest.mark.slow
async def test_events_page_by_cursor_until_the_first_and_export_as_csv(make_settings: Callable[..., Settings]) -> None:
    async with api_client(make_settings(), steps=steps()) as (client, _):
        await client.post("/tenants", json={"slug": "acme", "name": "=HYPERLINK(1)"})
        for n in range(4):
            await client.patch("/tenants/acme", json={"name": f"Acme {n}"})
        everything = (await client.get("/tenants/acme/events?limit=1000")).json()
        seen: list[dict[str, object]] = []
        url = "/tenants/acme/events?limit=3"
        pages = 0
        while url:
            answer = await client.get(url)
            assert answer.status_code == 200, answer.text
            seen += answer.json()
            pages += 1
            link = answer.headers.get("Link")
            url = link.split(">")[0].lstrip("<") if link else ""
        exported = await client.get("/tenants/acme/events?format=csv&limit=1000")
    assert len(everything) > 6
    assert seen == everything  # every event once, newest first, across pages
    assert pages == len(everything) // 3 + 1
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0] == ["at", "kind", "step", "actor", "message"]
    assert [r[1] for r in rows[1:]] == [e["kind"] for e in everything]
    created = next(r for r in rows if r[1] == "tenant.created")
    assert created[4] == "created '=HYPERLINK(1)' with mail domain acme.mail.example.test"


def test_a_cell_a_spreadsheet_would_run_as_a_formula_is_exported_as_text() -> None:
    event = TenantEventOut(at=datetime(2026, 12, 7, tzinfo=UTC), step=None, kind="k", message="=1+1", actor="@me")
    (_, row) = list(csv.reader(io.StringIO(events_csv([event]))))
    assert row[3:] == ["'@me", "'=1+1"]


async def test_a_cursor_that_is_not_a_number_is_422(make_settings: Callable[..., Settings]) -> None:
    async with api_client(make_settings(), steps=steps()) as (client, _):
        await client.post("/tenants", json={"slug": "acme", "name": "Acme"})
        assert (await client.get("/tenants/acme/events?cursor=abc")).status_code == 422
