"""The sandbox issuer's end-session endpoint (RP-initiated logout), as each provider's discovery names it.

authentik's ``/application/o/<slug>/end-session/`` ends the person's authentik session through the
provider's invalidation flow and then, when ``post_logout_redirect_uri`` is one the provider allows, sends
them back there. The sandbox keeps no browser session of its own (every sign-in asks for the password),
so there is nothing to end: it answers with the page that says so, or the redirect back. A return address
is allowed when it is on the origin of one of the provider's registered redirect URIs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from tenantry.sandbox.oidc_pages import message_page, page

if TYPE_CHECKING:
    from tenantry.sandbox.oidc import OidcIssuer


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def end_session_routes(issuer: OidcIssuer) -> list[BaseRoute]:
    """Routes to add beside :meth:`OidcIssuer.routes` on the sandbox authentik."""

    async def end_session(request: Request) -> Response:
        provider = issuer.provider(request.path_params["slug"])
        if provider is None:
            return page(message_page("Not found", "There is no such application."), status=404)
        params = request.query_params
        back = params.get("post_logout_redirect_uri", "")
        allowed = {_origin(uri) for uri in provider.redirect_uris} - {""}
        if back and _origin(back) in allowed:
            state = params.get("state")
            if state:
                back += ("&" if "?" in back else "?") + urlencode({"state": state})
            return RedirectResponse(back, status_code=302)
        return page(message_page("Signed out", f"You have been signed out of {provider.name}."))

    return [Route("/application/o/{slug}/end-session/", end_session, methods=["GET", "POST"])]
