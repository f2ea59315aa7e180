"""What every portal page shares: templates, security headers, CSRF checks, and errors shown as pages."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
import structlog
from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from starlette.datastructures import FormData
from starlette.types import Receive, Scope, Send

from tenantry.config import Settings
from tenantry.errors import AppError, ForbiddenError
from tenantry.portal import views
from tenantry.portal.sessions import csrf_matches
from tenantry.portal.signin import PortalAuth, SignInRequiredError, Visitor, safe_next

log = structlog.get_logger(__name__)
HERE = Path(__file__).parent
templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,  # every value is escaped unless a template says otherwise (none does)
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.globals.update(views.TEMPLATE_HELPERS)

TITLES = {
    400: "That request could not be read",
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    409: "That cannot be done now",
    412: "Someone changed this meanwhile",
    422: "Please check what you entered",
    429: "Too many requests",
    503: "Temporarily unavailable",
}
NOTICES = {
    "created": "Your workspace is being set up. Each part updates below as it is done.",
    "reconcile": "Reconcile started: every step runs again now.",
    "suspended": "The workspace is suspended: sign-in, mail and files are switched off until it is resumed.",
    "resumed": "The workspace is resumed: everything is switched back on as it was.",
    "deleted": "The workspace is scheduled for deletion. You can restore it until the date shown.",
    "restored": "The workspace is restored.",
    "admin-added": "Admin added.",
    "admin-removed": "Admin removed.",
    "signed-out": "You are signed out.",
}


def security_headers(settings: Settings) -> dict[str, str]:
    """No inline script and nothing from elsewhere; never framed. Forms may also lead to the issuer
    (signing out ends its session there)."""
    issuer = settings.portal_provider or ""
    parts = urlsplit(issuer)
    issuer_origin = f" {parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
    policy = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        f"form-action 'self'{issuer_origin}; frame-ancestors 'none'; base-uri 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    visitor: Visitor | None = None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    notice = NOTICES.get(request.query_params.get("notice", ""))
    html = templates.get_template(template).render(
        {"visitor": visitor, "notice": notice, "path": request.url.path, **context}
    )
    return HTMLResponse(html, status_code=status, headers=dict(headers or {}))


def fragment(template: str, context: Mapping[str, Any]) -> str:
    """One part of a page (for live updates), rendered and escaped like the page itself."""
    return templates.get_template(template).render(context)


def with_notice(url: str, notice: str | None) -> str:
    if notice is None:
        return url
    path, hash_, anchor = url.partition("#")
    return path + ("&" if "?" in path else "?") + f"notice={quote(notice)}" + hash_ + anchor


class ShowPageError(Exception):
    """Answer with this page instead (a form shown again with its problems); the unit of work rolls back."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class AfterCommitRedirect(Response):
    """Post/redirect/get once the request's unit of work has committed: ``settle`` (a use case's wait for its
    first reconcile) runs then, for at most ``wait`` seconds, so the next page usually shows a first result;
    the reconcile itself goes on in the background and the page follows it live."""

    def __init__(self, url: str, settle: Callable[[], Awaitable[object]] | None, *, wait: float) -> None:
        super().__init__(status_code=303, headers={"Location": url})
        self._settle = settle
        self._wait = wait

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._settle is not None:
            try:
                async with asyncio.timeout(self._wait):
                    await self._settle()
            except TimeoutError:
                pass
            except AppError as err:  # e.g. deleted meanwhile: the page it leads to will say so
                log.info("portal.settle_failed", code=err.code)
        await super().__call__(scope, receive, send)


def after_commit_redirect(
    url: str, settle: Callable[[], Awaitable[object]] | None, *, notice: str | None = None, wait: float = 2.0
) -> Response:
    return AfterCommitRedirect(with_notice(url, notice), settle, wait=wait)


class CsrfError(ForbiddenError):
    code = "csrf"


async def checked_form(request: Request, visitor: Visitor) -> FormData:
    """The posted form, once it proves it came from a page of this session (its CSRF token) and, when the
    browser says where from, from this origin."""
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        expected = PortalAuth.build(request).base_url(request)
        if origin.rstrip("/") != expected and origin.rstrip("/") != str(request.base_url).rstrip("/"):
            raise CsrfError("this form was sent from another site; nothing was changed")
    form = await request.form()
    presented = form.get("csrf")
    if not csrf_matches(visitor.csrf, presented if isinstance(presented, str) else None):
        raise CsrfError(
            "this form is out of date or did not come from a Tenantry page, so nothing was changed: "
            "go back, reload the page and send it again"
        )
    return form


def _message(err: AppError) -> str:
    detail = err.detail
    if isinstance(detail, list):
        return "; ".join(f"{p.get('field')}: {p.get('message')}" if isinstance(p, dict) else str(p) for p in detail)
    return str(detail)


def error_page(request: Request, err: AppError) -> HTMLResponse:
    title = TITLES.get(err.status_code, "Something went wrong")
    if err.code == "portal_not_configured":
        title = "The portal is not set up yet"
    context = {"title": title, "status": err.status_code, "message": _message(err), "code": err.code}
    visitor = getattr(request.state, "portal_visitor", None)
    return render(request, "error.html", context, visitor=visitor, status=err.status_code, headers=err.headers)


def _back_to(request: Request) -> str:
    """Where to return after signing in: this page, or for a form the page it was on (a POST cannot be
    replayed by a redirect)."""
    if request.method == "GET":
        query = request.url.query
        return safe_next(request.url.path + (f"?{query}" if query else ""))
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc and referer.netloc != request.url.netloc:
        return "/"
    return safe_next(referer.path + (f"?{referer.query}" if referer.query else ""))


class PortalRoute(APIRoute):
    """Portal routes answer with pages: errors become error pages (the unit of work has rolled back by
    then), a missing sign-in becomes a trip to the issuer and back, and every answer carries the
    security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                response = await handler(request)
            except ShowPageError as shown:
                response = shown.response
            except SignInRequiredError:
                if request.url.path.endswith("/live"):
                    response = Response(status_code=204)  # an event stream stops; the page shows why
                else:
                    response = RedirectResponse(f"/auth/login?next={quote(_back_to(request), safe='')}", 303)
            except AppError as err:
                response = error_page(request, err)
            for name, value in security_headers(request.app.state.container.settings).items():
                response.headers.setdefault(name, value)
            return response

        return run
