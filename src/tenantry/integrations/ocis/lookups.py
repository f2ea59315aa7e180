"""Looking spaces up by the marker in their description, with lookups made at the same time sharing listings.

oCIS can only list every project space (no filter on the description, no paging), so each lookup costs a
whole listing. Lookups that arrive while a listing runs wait for the next one, which then answers all of
them: never older than the lookup, and one listing per batch instead of one per tenant.
"""

from __future__ import annotations

import asyncio
import contextlib

from .client import OcisClient
from .models import Drive


class MarkerLookups:
    """``find(marker)``: the project spaces whose description contains ``marker``, from a listing that started
    after the call."""

    def __init__(self, client: OcisClient) -> None:
        self._client = client
        self._waiting: dict[str, list[asyncio.Future[list[Drive]]]] = {}
        self._running: asyncio.Task[None] | None = None

    async def find(self, marker: str) -> list[Drive]:
        future: asyncio.Future[list[Drive]] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(marker, []).append(future)
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._serve())
        return await future

    async def _serve(self) -> None:
        batch: dict[str, list[asyncio.Future[list[Drive]]]] = {}
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, {}
                try:
                    drives = await self._client.list_project_drives(description_contains=list(batch))
                except Exception as err:  # noqa: BLE001 - every lookup of the batch gets the listing's error
                    for futures in batch.values():
                        _settle(futures, error=err)
                    continue
                for marker, futures in batch.items():
                    _settle(futures, drives=[d for d in drives if d.description and marker in d.description])
                batch = {}
        finally:
            # Cancelled (the process is stopping): nobody may wait for a listing that will not come.
            for futures in [*batch.values(), *self._waiting.values()]:
                _settle(futures, error=asyncio.CancelledError())


def _settle(
    futures: list[asyncio.Future[list[Drive]]], *, drives: list[Drive] | None = None, error: BaseException | None = None
) -> None:
    for future in futures:
        if future.done():  # its caller gave up waiting
            continue
        with contextlib.suppress(asyncio.InvalidStateError):
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(list(drives or []))
