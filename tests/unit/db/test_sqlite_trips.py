"""SQLite statements make one trip each to the connection's thread, and behave as through SQLAlchemy's own
aiosqlite cursor: rows, rowcounts, RETURNING, executemany, errors, streamed reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.ext.asyncio import AsyncEngine

from tenantry.config import Settings
from tenantry.db.engine import create_engine

ITEMS = sa.table("items", sa.column("id", sa.Integer), sa.column("name", sa.String))


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 't.db'}", auth_enabled=False))
    async with engine.begin() as conn:
        await conn.exec_driver_sql("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
    yield engine
    await engine.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The functions queued to aiosqlite's connection threads, by name."""
    queued: list[str] = []
    queue = aiosqlite.Connection._execute

    async def counting(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        queued.append(getattr(fn, "__name__", repr(fn)))
        return await queue(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counting)
    return queued


async def test_a_select_and_an_insert_are_one_trip_each(engine: AsyncEngine, trips: list[str]) -> None:
    async with engine.connect() as conn:
        await conn.execute(sa.select(sa.literal(1)))  # the connection is checked out and ready
        trips.clear()
        rows = (await conn.execute(sa.select(sa.literal(7).label("n"), sa.literal("x").label("s")))).all()
        after_select = len(trips)
        inserted = await conn.execute(sa.insert(ITEMS).values(name="a"))
        after_insert = len(trips)

    assert [tuple(r) for r in rows] == [(7, "x")]
    assert after_select == 1
    assert after_insert == 2
    assert inserted.rowcount == 1
    assert inserted.lastrowid == 1


async def test_rowcounts_returning_executemany_and_a_streamed_read(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        many = await conn.execute(sa.insert(ITEMS), [{"name": f"n{i}"} for i in range(5)])
        returned = (await conn.execute(sa.insert(ITEMS).values(name="r").returning(ITEMS.c.id, ITEMS.c.name))).all()
        updated = await conn.execute(sa.update(ITEMS).where(ITEMS.c.name.like("n%")).values(name=ITEMS.c.name + "!"))
        nothing = await conn.execute(sa.update(ITEMS).where(ITEMS.c.name == "absent").values(name="z"))
        streamed = [row.name async for row in await conn.stream(sa.select(ITEMS.c.name).order_by(ITEMS.c.id))]

    assert many.rowcount == 5
    assert [tuple(r) for r in returned] == [(6, "r")]
    assert updated.rowcount == 5
    assert nothing.rowcount == 0
    assert streamed == ["n0!", "n1!", "n2!", "n3!", "n4!", "r"]


async def test_errors_are_sqlalchemys_and_the_transaction_rolls_back(engine: AsyncEngine) -> None:
    async def twice() -> None:
        async with engine.begin() as conn:
            await conn.execute(sa.insert(ITEMS).values(name="same"))
            await conn.execute(sa.insert(ITEMS).values(name="same"))

    async def missing() -> None:
        async with engine.connect() as conn:
            await conn.exec_driver_sql("SELECT * FROM no_such_table")

    with pytest.raises(exc.IntegrityError):
        await twice()
    with pytest.raises(exc.OperationalError):
        await missing()
    async with engine.connect() as conn:
        left = (await conn.execute(sa.select(sa.func.count()).select_from(ITEMS))).scalar_one()

    assert left == 0
