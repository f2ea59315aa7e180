"""Signing in and out of the portal: authorization code with PKCE against the portal's own provider."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from tenantry.errors import AppError, UnavailableError
from tenantry.portal.oidc import IssuerDownError, SignInError
from tenantry.portal.pages import PortalRoute, checked_form, render
from tenantry.portal.routes import VisitorDep
from tenantry.portal.sessions import LOGIN_SECONDS, cookie_name
from tenantry.portal.signin import PortalAuth, SignInRequiredError, safe_next
from tenantry.web import SessionDep

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/auth", route_class=PortalRoute, include_in_schema=False)


class SignInFailedError(AppError):
    status_code = 400
    code = "sign_in_failed"


def _set_cookie(response: Response, auth: PortalAuth, request: Request, value: str, max_age: float) -> None:
    secure = auth.secure(request)
    response.set_cookie(
        cookie_name(secure), value, max_age=int(max_age), path="/", httponly=True, samesite="lax", secure=secure
    )


def _clear_cookie(response: Response, auth: PortalAuth, request: Request) -> None:
    secure = auth.secure(request)
    response.delete_cookie(cookie_name(secure), path="/", httponly=True, samesite="lax", secure=secure)


@router.get("/login")
async def login(request: Request, session: SessionDep) -> Response:
    """Start signing in: a fresh session holding state, nonce and PKCE verifier, then off to the issuer."""
    auth = PortalAuth.build(request)
    client, _ = auth.configured()
    next_path = safe_next(request.query_params.get("next"))
    base = auth.base_url(request)
    if urlsplit(base).netloc != request.url.netloc:
        # The cookie must be set on the host the issuer sends the person back to. (Only the host: behind a
        # proxy that ends TLS the request may look like plain HTTP.)
        return RedirectResponse(f"{base}/auth/login?next={quote(next_path, safe='')}", status_code=303)
    sessions = auth.sessions(session)
    if await sessions.signed_in(auth.cookie(request)) is not None:
        return RedirectResponse(next_path, status_code=303)
    cookie, login_request = await sessions.begin_login(next_path)
    try:
        target = await client.authorize_url(login_request, auth.redirect_uri(request))
    except IssuerDownError as err:
        raise UnavailableError(err.message, headers={"Retry-After": "30"}) from err
    except SignInError as err:
        raise SignInFailedError(err.message) from err
    response = RedirectResponse(target, status_code=303)
    _set_cookie(response, auth, request, cookie, LOGIN_SECONDS)
    return response


@router.get("/callback")
async def callback(request: Request, session: SessionDep) -> Response:
    """The issuer sends the person back: check state, redeem the code, check the ID token's nonce, and
    replace the sign-in's session with a new one."""
    auth = PortalAuth.build(request)
    client, _ = auth.configured()
    query = request.query_params
    sessions = auth.sessions(session)
    pending = await sessions.pending_login(auth.cookie(request), query.get("state", ""))
    if pending is None:
        raise SignInFailedError(
            "this sign-in was not started here, took too long, or was already used; start again from the sign-in link"
        )
    if "error" in query:
        await sessions.end(pending.row)
        description = query.get("error_description") or query["error"]
        raise SignInFailedError(f"the identity provider did not sign you in: {description[:300]}")
    try:
        tokens, claims = await client.redeem(query.get("code", ""), pending.login, auth.redirect_uri(request))
    except IssuerDownError as err:
        raise UnavailableError(err.message, headers={"Retry-After": "30"}) from err
    except SignInError as err:
        log.info("portal.sign_in_refused", reason=err.message)
        raise SignInFailedError(err.message) from err
    actor = await auth.actor(request, tokens.access_token)
    if actor is None or actor.sub != claims.get("sub"):
        raise SignInFailedError(
            "the API does not accept the portal's access tokens; list the portal's provider in TENANTRY_OIDC_PROVIDERS"
        )
    name = str(claims.get("name") or claims.get("preferred_username") or claims.get("email") or "you")
    next_path = safe_next(pending.row.next_path)
    cookie = await sessions.complete_login(pending, tokens, sub=str(claims["sub"]), name=name)
    log.info("portal.signed_in", admin=actor.is_admin)
    response = RedirectResponse(next_path, status_code=303)
    _set_cookie(response, auth, request, cookie, auth.settings.portal_session_seconds)
    return response


@router.post("/logout")
async def logout(request: Request, visitor: VisitorDep, session: SessionDep) -> Response:
    """End the session here, revoke its refresh token, and end the issuer's session too when it can."""
    await checked_form(request, visitor)
    auth = PortalAuth.build(request)
    client, _ = auth.configured()
    sessions = auth.sessions(session)
    row = await sessions.signed_in(auth.cookie(request))
    if row is None:
        raise SignInRequiredError("/")
    tokens = sessions.tokens(row)
    await sessions.end(row)
    if tokens is not None and tokens.refresh_token:
        await client.revoke(tokens.refresh_token)
    back = f"{auth.base_url(request)}/auth/signed-out"
    target = await client.end_session_url(tokens.id_token if tokens else None, back) or "/auth/signed-out"
    response = RedirectResponse(target, status_code=303)
    _clear_cookie(response, auth, request)
    return response


@router.get("/signed-out", response_class=HTMLResponse)
async def signed_out(request: Request) -> Response:
    return render(request, "signed_out.html", {})
