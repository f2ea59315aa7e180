"""Builds everything a process needs once (engine, HTTP clients, adapters, reconciler) and closes it again.

The API, the worker, the CLI and the tests all use this one builder, so what runs in production is what
is tested. ``transports`` lets tests and the in-process demo route an upstream to an ASGI app.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tenantry.config import Settings
from tenantry.db.base import utcnow
from tenantry.db.engine import create_engine, create_sessionmaker
from tenantry.domains.resolver import DnsLookup, Resolver
from tenantry.integrations.http import build_http_client
from tenantry.integrations.null import NotConfigured
from tenantry.integrations.ports import FileProvider, IdentityProvider, MailProvider
from tenantry.provisioning.inventory import UpstreamInventory
from tenantry.provisioning.leases import LeaseManager
from tenantry.provisioning.reconciler import Reconciler
from tenantry.provisioning.resync import Resync
from tenantry.provisioning.steps import Step, build_steps
from tenantry.provisioning.verification import CheckTiming, DomainGate
from tenantry.provisioning.worker import ReconcileRunner, Worker

HttpFactory = Callable[[str], httpx.AsyncClient]


@dataclass
class Container:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    steps: list[Step]
    leases: LeaseManager
    reconciler: Reconciler
    resolver: DnsLookup
    http_clients: list[httpx.AsyncClient] = field(default_factory=list)
    transports: Mapping[str, httpx.AsyncBaseTransport] = field(default_factory=dict)

    def http_client(self, name: str) -> httpx.AsyncClient:
        """A further client for ``name`` (e.g. the token validator's), closed with the container."""
        client = build_http_client(
            timeout=self.settings.http_timeout_seconds,
            ca_bundle=self.settings.ca_bundle,
            transport=self.transports.get(name),
        )
        self.http_clients.append(client)
        return client

    def worker(self, *, owner: str | None = None) -> Worker:
        """The worker loop as every process runs it (``serve``'s in-process worker, ``worker``, the benchmark)."""
        settings = self.settings
        return Worker(
            self.reconciler,
            self.leases,
            poll_seconds=settings.worker_poll_seconds,
            batch_size=settings.worker_batch_size,
            concurrency=settings.worker_concurrency,
            owner=owner,
            resync=self.resync(),
            resync_interval_seconds=settings.resync_interval_seconds,
        )

    def resync(self) -> Resync:
        """The bulk resync over this process's steps (the worker runs it every resync interval)."""
        return Resync(self.sessionmaker, self.steps, list_timeout_seconds=self.settings.step_timeout_seconds)

    def runner(self, *, on_change: Callable[[], None] | None = None) -> ReconcileRunner:
        """Reconciles on request in the API process; ``on_change`` wakes a worker when the runner gives up."""
        return ReconcileRunner(
            self.reconciler, self.leases, lease_wait_seconds=self.settings.lease_seconds, on_change=on_change
        )

    def inventory(self) -> UpstreamInventory:
        """The upstreams' marked objects, as the orphans feature lists and deletes them."""
        return UpstreamInventory(self.steps, timeout=self.settings.step_timeout_seconds)

    async def aclose(self) -> None:
        for client in self.http_clients:
            await client.aclose()
        await self.engine.dispose()


def build_container(
    settings: Settings,
    *,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    steps: Sequence[Step] | None = None,
) -> Container:
    """Wire a process. ``steps`` replaces the upstream steps outright (tests of the reconciler itself)."""
    transports = transports or {}
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    clients: list[httpx.AsyncClient] = []

    def http(name: str) -> httpx.AsyncClient:
        client = build_http_client(
            timeout=settings.http_timeout_seconds, ca_bundle=settings.ca_bundle, transport=transports.get(name)
        )
        clients.append(client)
        return client

    steps = (
        list(steps)
        if steps is not None
        else build_steps(
            _identity_provider(settings, http), _mail_provider(settings, http), _file_provider(settings, http)
        )
    )
    leases = LeaseManager(sessionmaker, lease_seconds=settings.lease_seconds)
    resolver = Resolver(settings.nameservers, timeout=settings.dns_timeout_seconds)
    gate = DomainGate(
        sessionmaker,
        resolver,
        CheckTiming(settings.domain_check_base_seconds, settings.domain_check_cap_seconds),
        clock=utcnow,
    )
    reconciler = Reconciler(sessionmaker, steps, leases, settings, gate=gate)
    return Container(settings, engine, sessionmaker, steps, leases, reconciler, resolver, clients, transports)


AUTHENTIK_UNSET = "authentik is not configured (set TENANTRY_AUTHENTIK_URL and TENANTRY_AUTHENTIK_TOKEN)"
STALWART_UNSET = "Stalwart is not configured (set TENANTRY_STALWART_URL and an API key)"
OCIS_UNSET = "oCIS is not configured (set TENANTRY_OCIS_URL and its credentials)"


def _identity_provider(settings: Settings, http: HttpFactory) -> IdentityProvider:
    if not settings.authentik_url or settings.authentik_token is None:
        return NotConfigured(AUTHENTIK_UNSET)
    from tenantry.integrations.authentik.adapter import AuthentikIdentityProvider
    from tenantry.integrations.authentik.client import AuthentikClient

    client = AuthentikClient(http("authentik"), settings.authentik_url, settings.authentik_token.get_secret_value())
    return AuthentikIdentityProvider(client, group_prefix=settings.authentik_group_prefix)


def _mail_provider(settings: Settings, http: HttpFactory) -> MailProvider:
    if not settings.stalwart_url:
        return NotConfigured(STALWART_UNSET)
    if settings.stalwart_api_key is None and (settings.stalwart_username is None or settings.stalwart_password is None):
        return NotConfigured(STALWART_UNSET)
    from tenantry.integrations.stalwart.adapter import StalwartMailProvider
    from tenantry.integrations.stalwart.client import StalwartClient

    api_key = settings.stalwart_api_key.get_secret_value() if settings.stalwart_api_key else None
    client = StalwartClient(
        http("stalwart"),
        settings.stalwart_url,
        api_key=api_key,
        username=settings.stalwart_username,
        password=settings.stalwart_password.get_secret_value() if settings.stalwart_password else None,
    )
    # The client prefers the API key when one is given; errors must name the settings actually in use.
    credentials = (
        "TENANTRY_STALWART_API_KEY" if api_key else "TENANTRY_STALWART_USERNAME and TENANTRY_STALWART_PASSWORD"
    )
    return StalwartMailProvider(client, domain_base=settings.mail_domain_base, credentials_setting=credentials)


def _file_provider(settings: Settings, http: HttpFactory) -> FileProvider:
    if not settings.ocis_url:
        return NotConfigured(OCIS_UNSET)
    from tenantry.integrations.oauth import ClientCredentialsAuth
    from tenantry.integrations.ocis.adapter import OcisFileProvider
    from tenantry.integrations.ocis.client import OcisClient

    auth: httpx.Auth
    hint = "TENANTRY_OCIS_USERNAME and TENANTRY_OCIS_APP_TOKEN"
    if settings.ocis_auth == "app-token":
        if not settings.ocis_username or settings.ocis_app_token is None:
            return NotConfigured(OCIS_UNSET)
        auth = httpx.BasicAuth(settings.ocis_username, settings.ocis_app_token.get_secret_value())
    else:
        if not (settings.ocis_token_url and settings.ocis_client_id and settings.ocis_client_secret):
            return NotConfigured(OCIS_UNSET)
        auth = ClientCredentialsAuth(
            settings.ocis_token_url,
            settings.ocis_client_id,
            settings.ocis_client_secret.get_secret_value(),
            settings.ocis_scope,
            http("ocis-token"),
        )
        hint = (
            "TENANTRY_OCIS_CLIENT_ID and TENANTRY_OCIS_CLIENT_SECRET, and that their service account "
            "resolves to an oCIS user"
        )
    return OcisFileProvider(OcisClient(http("ocis"), settings.ocis_url, auth), credentials_hint=hint)
