"""Live updates of a workspace page: server-sent events carrying its changed parts, rendered as on the page.

Each stream reads the tenant through the same services as the visitor, in a short read-only session per
look, and sends the parts whose HTML changed. Streams are short (the browser's EventSource reconnects by
itself, passing through sign-in and token refresh again), and end when the visitor's session does or the
server starts shutting down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from tenantry.errors import NotFoundError
from tenantry.portal import workspace as ws
from tenantry.portal.pages import PortalRoute
from tenantry.portal.routes import VisitorDep
from tenantry.portal.signin import PortalAuth, Visitor
from tenantry.tenants.domain_service import TenantDomains
from tenantry.tenants.service import TenantService

router = APIRouter(route_class=PortalRoute, include_in_schema=False)

LOOK_EVERY = 1.0  # seconds between looks at the store
STREAM_SECONDS = 25.0  # then the browser reconnects (so a server shutting down never waits long)
RECONNECT_MS = 500


def _event(name: str, data: object) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


async def _parts(request: Request, slug: str, visitor: Visitor, events_before: int | None) -> dict[str, str] | None:
    """The page's live parts as the visitor sees them now, or None once they may no longer see it."""
    container = request.app.state.container
    async with container.sessionmaker() as session:
        service = TenantService(session, container.settings)
        domains = TenantDomains(service, container.resolver)
        try:
            loaded = await ws.load(service, domains, slug, visitor, events_before=events_before)
        except NotFoundError:
            return None
        return ws.live_parts(loaded, visitor, container.settings)


async def _stream(request: Request, slug: str, visitor: Visitor, events_before: int | None) -> AsyncIterator[str]:
    auth = PortalAuth.build(request)
    draining: asyncio.Event = request.app.state.draining  # the server is shutting down: end now, reconnect
    sent: dict[str, str] = {}
    deadline = time.monotonic() + STREAM_SECONDS
    yield f"retry: {RECONNECT_MS}\n\n"
    while time.monotonic() < deadline and not draining.is_set() and not await request.is_disconnected():
        parts = await _parts(request, slug, visitor, events_before)
        if parts is None or not await auth.still_signed_in(request):
            yield _event("gone", {"reload": True})
            return
        changed = {element: html for element, html in parts.items() if sent.get(element) != html}
        if changed:
            sent.update(changed)
            yield _event("update", changed)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(draining.wait(), LOOK_EVERY)


@router.get("/workspaces/{slug}/live")
async def live(slug: str, request: Request, visitor: VisitorDep) -> Response:
    before = request.query_params.get("events_before", "")
    events_before = int(before) if before.isdigit() and 0 < len(before) < 19 else None
    if await _parts(request, slug, visitor, events_before) is None:
        raise NotFoundError(f"no tenant '{slug}'")  # exactly as the page and the API answer
    return StreamingResponse(
        _stream(request, slug, visitor, events_before),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
