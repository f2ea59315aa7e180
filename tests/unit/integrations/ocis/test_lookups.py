"""Lookups by marker made at the same time share one listing, and none is answered from an older one."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from tenantry.integrations.ocis.errors import OcisServerError
from tenantry.integrations.ocis.lookups import MarkerLookups
from tenantry.integrations.ocis.models import Drive


class Listing:
    """A client whose listings the test lets finish one at a time; records what each listing looked for."""

    def __init__(self, drives: list[Drive]) -> None:
        self.drives = drives
        self.asked: list[list[str]] = []
        self.release = asyncio.Semaphore(0)
        self.fail: Exception | None = None

    async def list_project_drives(self, *, description_contains: Sequence[str]) -> list[Drive]:
        self.asked.append(sorted(description_contains))
        await self.release.acquire()
        if self.fail is not None:
            raise self.fail
        return [d for d in self.drives if any(m in (d.description or "") for m in description_contains)]


def drive(drive_id: str, marker: str) -> Drive:
    return Drive(id=drive_id, name=drive_id, description=f"files [{marker}]")


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_lookups_made_together_share_one_listing() -> None:
    client = Listing([drive("d1", "m:1"), drive("d2", "m:2"), drive("d3", "m:3")])
    lookups = MarkerLookups(client)  # type: ignore[arg-type]
    finds = [asyncio.create_task(lookups.find(m)) for m in ("m:1", "m:2", "m:9")]
    await settle()
    client.release.release()

    found = await asyncio.gather(*finds)

    assert client.asked == [["m:1", "m:2", "m:9"]]
    assert [[d.id for d in ds] for ds in found] == [["d1"], ["d2"], []]


async def test_a_lookup_made_during_a_listing_waits_for_the_next_one() -> None:
    client = Listing([drive("d1", "m:1")])
    lookups = MarkerLookups(client)  # type: ignore[arg-type]
    first = asyncio.create_task(lookups.find("m:1"))
    await settle()
    client.drives.append(drive("d2", "m:2"))  # made after the first listing started
    second = asyncio.create_task(lookups.find("m:2"))
    await settle()
    client.release.release()
    assert [d.id for d in await first] == ["d1"]
    await settle()
    client.release.release()

    assert [d.id for d in await second] == ["d2"]
    assert client.asked == [["m:1"], ["m:2"]]


async def test_a_failed_listing_fails_every_lookup_of_its_batch_and_the_next_batch_lists_again() -> None:
    client = Listing([drive("d1", "m:1")])
    client.fail = OcisServerError("oCIS answered 503", status=503)
    lookups = MarkerLookups(client)  # type: ignore[arg-type]
    finds = [asyncio.create_task(lookups.find(m)) for m in ("m:1", "m:2")]
    await settle()
    client.release.release()
    results: list[Any] = await asyncio.gather(*finds, return_exceptions=True)
    client.fail = None
    later = asyncio.create_task(lookups.find("m:1"))
    await settle()
    client.release.release()

    assert all(isinstance(r, OcisServerError) for r in results)
    assert [d.id for d in await later] == ["d1"]


async def test_a_lookup_that_gives_up_does_not_disturb_the_others() -> None:
    client = Listing([drive("d1", "m:1")])
    lookups = MarkerLookups(client)  # type: ignore[arg-type]
    impatient = asyncio.create_task(lookups.find("m:1"))
    patient = asyncio.create_task(lookups.find("m:1"))
    await settle()
    impatient.cancel()
    client.release.release()

    assert [d.id for d in await patient] == ["d1"]
    with pytest.raises(asyncio.CancelledError):
        await impatient
