"""How SQLite runs a page of the tenant list: it walks an index in the list's order and stops after the page,
with or without a status filter, instead of reading every matching tenant and sorting them."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.dialects import sqlite

from tenantry.tenants.repository import _listed_query


def plan(database: Path, *, by_status: bool) -> list[str]:
    query = _listed_query(by_status, False, False, True, True)  # a live status or none, past a cursor, SQLite
    compiled = query.compile(dialect=sqlite.dialect())
    values = {"status": "active", "at": "2026-12-07 00:00:00.000000", "after_id": "", "limit": 101, "offset": 0}
    sql = str(compiled)
    parameters = [values[name] for name in compiled.positiontup or []]
    with contextlib.closing(sqlite3.connect(database)) as conn:
        return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", parameters)]


@pytest.mark.parametrize(
    ("by_status", "index"), [(False, "ix_tenants_created_at_id"), (True, "ix_tenants_status_created_at_id")]
)
def test_a_page_walks_the_listing_index_in_order(sqlite_template: Path, by_status: bool, index: str) -> None:
    steps = plan(sqlite_template, by_status=by_status)

    tenants = [step for step in steps if "tenants" in step]
    assert tenants, steps
    assert all(index in step for step in tenants), steps
    # The only sort is of the page's own rows with their steps (the outer ORDER BY), not of every tenant.
    assert sum("TEMP B-TREE" in step for step in steps) <= 1, steps
