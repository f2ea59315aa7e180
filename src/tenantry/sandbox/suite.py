"""The three sandbox upstreams and the OIDC issuer, wired together with one set of demo credentials.

authentik's API and its OAuth2 providers share one app (as on a real authentik host). As Tenantry is deployed
against a real authentik, each client is a provider of its own, with its own issuer: the portal (confidential,
application ``tenantry``), the CLI (public, device login), two machine providers and oCIS's. The sandbox oCIS
accepts the providers' access tokens (as an oCIS configured with authentik as its IdP does) and an app token
of the service user. :meth:`SandboxSuite.settings` gives the ``Settings`` values that point Tenantry at them.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx

from tenantry.sandbox.authentik import AuthentikSandbox
from tenantry.sandbox.ocis import OcisSandbox
from tenantry.sandbox.oidc import OidcIssuer
from tenantry.sandbox.oidc_logout import end_session_routes
from tenantry.sandbox.oidc_models import DemoUser, OidcClient
from tenantry.sandbox.stalwart import StalwartSandbox

ADMIN_GROUP = "tenantry-admins"
APP_SLUG = "tenantry"


def _secret() -> str:
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class DemoCredentials:
    """Fresh random secrets for one sandbox run (never reused, so printing them for the demo is harmless)."""

    authentik_token: str = field(default_factory=_secret, repr=False)
    stalwart_api_key: str = field(default_factory=lambda: "API_" + _secret(), repr=False)
    ocis_username: str = "svc-tenantry"
    ocis_app_token: str = field(default_factory=_secret, repr=False)
    admin_client_id: str = "tenantry-admin-machine"
    admin_client_secret: str = field(default_factory=_secret, repr=False)
    user_client_id: str = "tenantry-user-machine"
    user_client_secret: str = field(default_factory=_secret, repr=False)
    ocis_client_id: str = "tenantry-ocis"
    ocis_client_secret: str = field(default_factory=_secret, repr=False)
    portal_client_id: str = "tenantry-portal"
    portal_client_secret: str = field(default_factory=_secret, repr=False)
    cli_client_id: str = "tenantry-cli"
    # A service account in tenantry-admins, signing in through the admin machine provider with an app password.
    service_account: str = "svc-tenantry-admin"
    service_account_app_password: str = field(default_factory=_secret, repr=False)
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(9), repr=False)
    user_password: str = field(default_factory=lambda: secrets.token_urlsafe(9), repr=False)


class SandboxSuite:
    """authentik (+ OIDC), Stalwart and oCIS sandboxes for one run, addressed by their public URLs."""

    def __init__(
        self,
        *,
        authentik_url: str,
        stalwart_url: str,
        ocis_url: str,
        portal_url: str = "",
        credentials: DemoCredentials | None = None,
        dkim_delay: float = 0.5,
        fast_dkim: bool = True,
    ) -> None:
        creds = credentials or DemoCredentials()
        self.credentials = creds
        self.urls = {
            "authentik": authentik_url.rstrip("/"),
            "stalwart": stalwart_url.rstrip("/"),
            "ocis": ocis_url.rstrip("/"),
        }
        self.admin_user = DemoUser(
            username="alice",
            password=creds.admin_password,
            name="Alice Admin",
            email="alice@example.test",
            groups=[ADMIN_GROUP],
        )
        self.plain_user = DemoUser(
            username="bob", password=creds.user_password, name="Bob User", email="bob@example.test", groups=["staff"]
        )
        self.service_account = DemoUser(
            username=creds.service_account,
            password="",
            name="Tenantry admin automation",
            groups=[ADMIN_GROUP],
            app_passwords=(creds.service_account_app_password,),
        )
        redirect = [f"{portal_url.rstrip('/')}/auth/callback"] if portal_url else []
        # The admin machine's own secret acts as ak-tenantry-admin-machine-client_credentials, in no group;
        # admin rights come with the service account's app password.
        clients = [
            OidcClient(
                client_id=creds.admin_client_id,
                client_secret=creds.admin_client_secret,
                grant_types=("client_credentials",),
                name="tenantry-admin-machine",
            ),
            OidcClient(
                client_id=creds.user_client_id,
                client_secret=creds.user_client_secret,
                grant_types=("client_credentials",),
                name="tenantry-user-machine",
            ),
            OidcClient(
                client_id=creds.ocis_client_id,
                client_secret=creds.ocis_client_secret,
                grant_types=("client_credentials",),
                name="tenantry-ocis",
            ),
            OidcClient(
                client_id=creds.portal_client_id,
                client_secret=creds.portal_client_secret,
                redirect_uris=redirect,
                grant_types=("authorization_code", "refresh_token"),
                name="tenantry-portal",
                slug=APP_SLUG,
            ),
            OidcClient(
                client_id=creds.cli_client_id,
                client_secret=None,
                grant_types=("urn:ietf:params:oauth:grant-type:device_code", "refresh_token"),
                name="tenantry-cli",
            ),
        ]
        self.issuer = OidcIssuer(
            app_slug=APP_SLUG,
            public_url=self.urls["authentik"],
            clients=clients,
            users=[self.admin_user, self.plain_user, self.service_account],
        )
        routes = [*self.issuer.routes(), *end_session_routes(self.issuer)]
        self.authentik = AuthentikSandbox([creds.authentik_token], extra_routes=routes)
        self.stalwart = StalwartSandbox(
            api_keys=[creds.stalwart_api_key],
            dkim_delay=dkim_delay,
            public_url=self.urls["stalwart"],
            fast_dkim=fast_dkim,
            mail_host="mail.example.test",
        )
        ocis_service_account = clients[2].service_account_username
        self.ocis = OcisSandbox(
            app_tokens={creds.ocis_username: creds.ocis_app_token},
            bearer_validator=self._ocis_user,
            public_url=self.urls["ocis"],
            space_admins={creds.ocis_username, ocis_service_account},
        )

    def _ocis_user(self, token: str) -> str | None:
        user = self.issuer.validate_access_token(token)
        return None if user is None else user.username

    @property
    def audiences(self) -> list[str]:
        """The client ids Tenantry accepts tokens of, each from its own provider (oCIS's is not among them)."""
        c = self.credentials
        return [c.admin_client_id, c.user_client_id, c.portal_client_id, c.cli_client_id]

    @property
    def trusted_providers(self) -> dict[str, list[str]]:
        """``TENANTRY_OIDC_PROVIDERS`` for this suite: each trusted provider's issuer and its client id."""
        return {self.issuer.issuer_for(client_id): [client_id] for client_id in self.audiences}

    def settings(self, *, ocis_auth: str = "app-token") -> dict[str, Any]:
        """``Settings`` keyword values that point Tenantry at this suite."""
        c = self.credentials
        values: dict[str, Any] = {
            "authentik_url": self.urls["authentik"],
            "authentik_token": c.authentik_token,
            "stalwart_url": self.urls["stalwart"],
            "stalwart_api_key": c.stalwart_api_key,
            "ocis_url": self.urls["ocis"],
            "ocis_auth": ocis_auth,
            # JSON, as the environment variable holds it, so these values also work as TENANTRY_* strings.
            "oidc_providers": json.dumps(self.trusted_providers),
            "admin_group": ADMIN_GROUP,
            "oidc_cli_client_id": c.cli_client_id,
            "portal_client_id": c.portal_client_id,
            "portal_client_secret": c.portal_client_secret,
        }
        if ocis_auth == "app-token":
            values.update(ocis_username=c.ocis_username, ocis_app_token=c.ocis_app_token)
        else:
            values.update(
                ocis_token_url=f"{self.urls['authentik']}/application/o/token/",
                ocis_client_id=c.ocis_client_id,
                ocis_client_secret=c.ocis_client_secret,
            )
        return values

    def apps(self) -> dict[str, Any]:
        return {"authentik": self.authentik.app, "stalwart": self.stalwart.app, "ocis": self.ocis.app}

    def transports(self) -> dict[str, httpx.AsyncBaseTransport]:
        """In-process transports by upstream name (the oCIS token endpoint lives on authentik)."""
        return {
            "authentik": httpx.ASGITransport(app=self.authentik.app),
            "oidc": httpx.ASGITransport(app=self.authentik.app),
            "ocis-token": httpx.ASGITransport(app=self.authentik.app),
            "stalwart": httpx.ASGITransport(app=self.stalwart.app),
            "ocis": httpx.ASGITransport(app=self.ocis.app),
        }
