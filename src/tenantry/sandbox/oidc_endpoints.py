"""HTTP endpoints of the sandbox OIDC issuer, as Starlette routes under ``/application/o/``."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from tenantry.sandbox.oidc_keys import ALGORITHM
from tenantry.sandbox.oidc_models import DEVICE_CODE_GRANT, OAuthError, OidcClient
from tenantry.sandbox.oidc_pages import device_page, login_page, message_page, page

if TYPE_CHECKING:
    from tenantry.sandbox.oidc import OidcIssuer

ACR = "goauthentik.io/providers/oauth2/default"

AUTHORIZE_PATH = "/application/o/authorize/"
# authentik's device entry page is at the host root (urls_root.py: "device"), not under /application/o/.
DEVICE_VERIFY_PATH = "/device"
# authentik treats the password grant exactly as client_credentials.
_PASSWORD_GRANT = "password"  # noqa: S105 -- the name of a grant type, not a credential
_TOKEN_GRANTS = ("authorization_code", "refresh_token", "client_credentials", _PASSWORD_GRANT, DEVICE_CODE_GRANT)
_AUTHORIZE_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
)
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_BAD_LOGIN = "Invalid username or password."


async def _form(request: Request) -> dict[str, str]:
    if request.method != "POST":
        return {}
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


def _required(form: Mapping[str, str], name: str) -> str:
    value = form.get(name, "")
    if not value:
        raise OAuthError("invalid_request", f"{name} is required")
    return value


def _with_query(uri: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True) + [(k, v) for k, v in params.items() if v]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _presented_credentials(request: Request, form: Mapping[str, str]) -> tuple[str, str]:
    """client_secret_basic (form-encoded id and secret, RFC 6749 §2.3.1) or client_secret_post."""
    header = request.headers.get("authorization", "")
    if header[:6].lower() != "basic ":
        return form.get("client_id", ""), form.get("client_secret", "")
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as err:
        raise OAuthError("invalid_client", "malformed Basic credentials") from err
    raw_id, _, raw_secret = decoded.partition(":")
    client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
    if form.get("client_id", client_id) != client_id:
        raise OAuthError("invalid_request", "client_id differs from the Basic credentials")
    return client_id, secret


def _bearer_error(error: str, description: str) -> JSONResponse:
    challenge = 'Bearer realm="authentik"' + (f', error="{error}"' if error == "invalid_token" else "")
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=401,
        headers={**_NO_STORE, "WWW-Authenticate": challenge},
    )


def discovery_document(issuer: OidcIssuer, client: OidcClient) -> dict[str, Any]:
    """The provider's ``.well-known/openid-configuration`` (authentik ``views/provider.py``)."""
    return {
        "issuer": issuer.issuer_for(client),
        "authorization_endpoint": issuer.url(AUTHORIZE_PATH),
        "token_endpoint": issuer.url("/application/o/token/"),
        "userinfo_endpoint": issuer.url("/application/o/userinfo/"),
        "end_session_endpoint": issuer.url(f"/application/o/{client.slug}/end-session/"),
        "introspection_endpoint": issuer.url("/application/o/introspect/"),
        "revocation_endpoint": issuer.url("/application/o/revoke/"),
        "device_authorization_endpoint": issuer.url("/application/o/device/"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "jwks_uri": issuer.url(f"/application/o/{client.slug}/jwks/"),
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "implicit",
            "client_credentials",
            _PASSWORD_GRANT,
            DEVICE_CODE_GRANT,
        ],
        "id_token_signing_alg_values_supported": [ALGORITHM],
        "subject_types_supported": ["public"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "acr_values_supported": [ACR],
        "scopes_supported": sorted({"openid", *client.scopes}),
        "request_parameter_supported": False,
        "claims_supported": [
            *("sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "amr", "nonce"),
            *(("email", "email_verified") if "email" in client.scopes else ()),
            *(("name", "given_name", "preferred_username", "nickname", "groups") if "profile" in client.scopes else ()),
        ],
        "claims_parameter_supported": False,
        "code_challenge_methods_supported": ["S256"],
    }


def _authorize_error(client: OidcClient, params: Mapping[str, str]) -> tuple[str, str] | None:
    if params["response_type"] != "code":
        return "unsupported_response_type", "only response_type=code is supported"
    if "authorization_code" not in client.grant_types:
        return "unauthorized_client", "authorization_code is not allowed for this client"
    if params["code_challenge"] and params["code_challenge_method"] != "S256":
        return "invalid_request", "code_challenge_method must be S256"
    if not params["code_challenge"] and client.is_public:
        return "invalid_request", "public clients must use PKCE (S256)"
    return None


class OidcEndpoints:
    """The request handlers of one :class:`~tenantry.sandbox.oidc.OidcIssuer`."""

    def __init__(self, issuer: OidcIssuer) -> None:
        self.issuer = issuer

    def routes(self) -> list[BaseRoute]:
        return [
            Route(AUTHORIZE_PATH, self.authorize, methods=["GET", "POST"]),
            Route("/application/o/token/", self.token, methods=["POST"]),
            Route("/application/o/userinfo/", self.userinfo, methods=["GET", "POST"]),
            Route("/application/o/revoke/", self.revoke, methods=["POST"]),
            Route("/application/o/introspect/", self.introspect, methods=["POST"]),
            Route("/application/o/device/", self.device_authorization, methods=["POST"]),
            Route(DEVICE_VERIFY_PATH, self.device_verify, methods=["GET", "POST"]),
            Route("/application/o/{slug}/.well-known/openid-configuration", self.discovery, methods=["GET"]),
            Route("/application/o/{slug}/jwks/", self.jwks, methods=["GET"]),
        ]

    # -- discovery and keys ---------------------------------------------------------------------
    async def discovery(self, request: Request) -> Response:
        client = self.issuer.provider(request.path_params["slug"])
        if client is None:
            return JSONResponse({"detail": "Not found."}, status_code=404)
        return JSONResponse(discovery_document(self.issuer, client))

    async def jwks(self, request: Request) -> Response:
        # Every provider publishes the key ring they all sign with.
        if self.issuer.provider(request.path_params["slug"]) is None:
            return JSONResponse({"detail": "Not found."}, status_code=404)
        return JSONResponse(self.issuer.jwks())

    # -- authorization code ---------------------------------------------------------------------
    async def authorize(self, request: Request) -> Response:
        form = await _form(request)
        source: Mapping[str, str] = form if request.method == "POST" else request.query_params
        params = {name: source.get(name, "") for name in _AUTHORIZE_PARAMS}
        checked = self._check_authorize(params)
        if isinstance(checked, Response):
            return checked
        client = checked
        action = f"{request.scope.get('root_path', '')}{AUTHORIZE_PATH}"
        if request.method == "GET":
            return page(login_page(action=action, client_name=client.name, params=params))
        if form.get("action") == "deny":
            return self._redirect_error(params, "access_denied", "the user cancelled the sign-in")
        username = form.get("username", "")
        user = self.issuer.authenticate_user(username, form.get("password", ""))
        if user is None:
            html = login_page(
                action=action, client_name=client.name, params=params, username=username, error=_BAD_LOGIN
            )
            return page(html, status=401)
        scope = self.issuer.granted_scope(client, params["scope"], all_if_none=True)
        auth = self.issuer.authorization(client, user, scope, params["nonce"])
        code = self.issuer.grants.create_code(auth, params["redirect_uri"], params["code_challenge"] or None)
        return RedirectResponse(
            _with_query(params["redirect_uri"], {"code": code, "state": params["state"]}), status_code=302
        )

    def _check_authorize(self, params: dict[str, str]) -> OidcClient | Response:
        client = self.issuer.client(params["client_id"])
        # RFC 6749 §4.1.2.1: without a known client and a registered redirect_uri, never redirect.
        if client is None or params["redirect_uri"] not in client.redirect_uris:
            reason = "is not known" if client is None else "did not send a registered redirect URI"
            return page(message_page("Sign-in failed", f"The application {reason}."), status=400)
        error = _authorize_error(client, params)
        return client if error is None else self._redirect_error(params, *error)

    @staticmethod
    def _redirect_error(params: Mapping[str, str], error: str, description: str) -> Response:
        query = {"error": error, "error_description": description, "state": params.get("state", "")}
        return RedirectResponse(_with_query(params["redirect_uri"], query), status_code=302)

    # -- token endpoint -------------------------------------------------------------------------
    async def token(self, request: Request) -> Response:
        """authentik's token view: every refusal, a bad client secret included, is a 400 with an OAuth error."""
        form = await _form(request)
        try:
            client, secret = self._client_auth(request, form)
            body = self._grant(client, secret, form)
        except OAuthError as err:
            return err.response()
        return JSONResponse(body, headers=_NO_STORE)

    def _grant(self, client: OidcClient, secret: str, form: Mapping[str, str]) -> dict[str, Any]:
        grant_type = _required(form, "grant_type")
        if grant_type not in _TOKEN_GRANTS:
            raise OAuthError("unsupported_grant_type", "this grant type is not supported")
        allowed = "client_credentials" if grant_type == _PASSWORD_GRANT else grant_type
        if allowed not in client.grant_types:
            raise OAuthError("unauthorized_client", f"{grant_type} is not allowed for this client")
        if grant_type in ("authorization_code", "refresh_token") and not (
            client.is_public or client.secret_matches(secret)
        ):
            # A confidential client's code and refresh token are worth nothing without its secret.
            raise OAuthError("invalid_client", "client authentication failed")
        if grant_type == "authorization_code":
            return self.issuer.grants.redeem_code(
                client, _required(form, "code"), form.get("redirect_uri"), form.get("code_verifier")
            )
        if grant_type == "refresh_token":
            token = _required(form, "refresh_token")
            return self.issuer.grants.redeem_refresh_token(client, token, form.get("scope"))
        if allowed == "client_credentials":
            return self.issuer.grants.client_credentials(client, form, secret)
        return self.issuer.grants.poll_device(client, _required(form, "device_code"))

    def _client_auth(self, request: Request, form: Mapping[str, str]) -> tuple[OidcClient, str]:
        """The client the request names (Basic or form fields) and the secret it sent, checked later per grant."""
        client_id, secret = _presented_credentials(request, form)
        client = self.issuer.client(client_id)
        if client is None:
            raise OAuthError("invalid_client", "client authentication failed")
        return client, secret

    def _authenticate_client(
        self, request: Request, form: Mapping[str, str], *, grant: str | None = None, confidential: bool = False
    ) -> OidcClient:
        """client_secret_basic or client_secret_post; a public client only names itself.

        ``grant`` requires the client to be allowed that grant; ``confidential`` refuses public clients.
        """
        client_id, secret = _presented_credentials(request, form)
        client = self.issuer.client(client_id)
        if client is None:
            raise OAuthError("invalid_client", "client authentication failed", 401)
        if not client.is_public and not client.secret_matches(secret):
            raise OAuthError("invalid_client", "client authentication failed", 401)
        if confidential and client.is_public:
            raise OAuthError("invalid_client", "this endpoint needs client credentials", 401)
        if grant is not None and grant not in client.grant_types:
            raise OAuthError("unauthorized_client", f"{grant} is not allowed for this client")
        return client

    # -- userinfo, revocation, introspection ----------------------------------------------------
    async def userinfo(self, request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _bearer_error("invalid_request", "a Bearer access token is required")
        claims = self.issuer.decode_access_token(token.strip())
        if claims is None:
            return _bearer_error("invalid_token", "the access token is invalid, expired or revoked")
        return JSONResponse(self.issuer.userinfo(claims), headers=_NO_STORE)

    async def revoke(self, request: Request) -> Response:
        form = await _form(request)
        try:
            client = self._authenticate_client(request, form)
            self.issuer.revoke(client, _required(form, "token"))
        except OAuthError as err:
            return err.response()
        return Response(status_code=200, headers=_NO_STORE)

    async def introspect(self, request: Request) -> Response:
        """authentik's introspection view: the caller must authenticate as a provider (client id and secret,
        Basic or form), but a failed authentication is answered like an unknown token, ``{"active": false}``
        with 200, not with 401 (``TokenIntrospectionError``)."""
        form = await _form(request)
        try:
            client = self._authenticate_client(request, form, confidential=True)
            body = self.issuer.introspect(client, _required(form, "token"))
        except OAuthError:
            body = {"active": False}
        return JSONResponse(body, headers=_NO_STORE)

    # -- device authorization (RFC 8628) --------------------------------------------------------
    async def device_authorization(self, request: Request) -> Response:
        """authentik's device view: only the client id counts, and the scope is kept as requested."""
        form = await _form(request)
        try:
            client, _ = self._client_auth(request, form)
        except OAuthError as err:
            return err.response()
        if DEVICE_CODE_GRANT not in client.grant_types:
            return OAuthError("unauthorized_client", f"{DEVICE_CODE_GRANT} is not allowed for this client").response()
        scope = tuple(dict.fromkeys((form.get("scope") or "").split()))
        grant = self.issuer.grants.start_device(client, scope)
        verification_uri = self.issuer.url(DEVICE_VERIFY_PATH)
        return JSONResponse(
            {
                "device_code": grant.device_code,
                "user_code": grant.user_code,
                "verification_uri": verification_uri,
                "verification_uri_complete": _with_query(verification_uri, {"code": grant.user_code}),
                "expires_in": int(self.issuer.device_code_validity),
                "interval": grant.interval,
            },
            headers=_NO_STORE,
        )

    async def device_verify(self, request: Request) -> Response:
        action = f"{request.scope.get('root_path', '')}{DEVICE_VERIFY_PATH}"
        if request.method == "GET":
            return page(device_page(action=action, user_code=request.query_params.get("code", "")))
        form = await _form(request)
        user_code, username = form.get("user_code", ""), form.get("username", "")
        user = self.issuer.authenticate_user(username, form.get("password", ""))
        if user is None:
            html = device_page(action=action, user_code=user_code, username=username, error=_BAD_LOGIN)
            return page(html, status=401)
        approve = form.get("action", "approve") != "deny"
        try:
            grant = self.issuer.grants.decide_device(user_code, user if approve else None)
        except OAuthError:
            html = device_page(
                action=action,
                user_code=user_code,
                username=username,
                error="This code is unknown or has expired. Check the code on your device.",
            )
            return page(html, status=400)
        if not approve:
            return page(message_page("Request denied", "The device was not connected."))
        return page(
            message_page("Device connected", f"{grant.client.name} is now signed in. You can return to your device.")
        )
