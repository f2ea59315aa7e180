"""The FastAPI application factory: everything is built in the lifespan, nothing at import time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import sqlalchemy as sa
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from tenantry.auth.actor import SYSTEM, Actor
from tenantry.config import Settings
from tenantry.container import Container, build_container
from tenantry.db.migrate import ensure_up_to_date
from tenantry.errors import AppError
from tenantry.integrations.errors import StepError
from tenantry.integrations.null import NotConfiguredError
from tenantry.limits import WriteLimit
from tenantry.orphans.routes import router as orphans_router
from tenantry.portal.mount import install_portal
from tenantry.provisioning.steps import Step
from tenantry.provisioning.worker import Worker
from tenantry.tenants.routes import router as tenants_router
from tenantry.web import RefuseAmbiguousJson, allowed_methods, install_store_error_handlers, on_draining

log = structlog.get_logger("tenantry.app")

ActorResolver = Callable[[Request], Awaitable[Actor]]
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/auth/config", "/openapi.json", "/docs", "/redoc"})


async def _no_auth(_request: Request) -> Actor:
    return SYSTEM


def create_app(
    settings: Settings,
    *,
    container_factory: Callable[[], Container] | None = None,
    actor_resolver: ActorResolver | None = None,
) -> FastAPI:
    """Build the API. ``container_factory`` lets tests and the demo route upstreams to in-process sandboxes."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        container = container_factory() if container_factory else build_container(settings)
        worker: Worker | None = None
        worker_task: asyncio.Task[None] | None = None
        app.state.draining = asyncio.Event()  # set when the server starts shutting down
        stop_watching = on_draining(app.state.draining.set)
        try:
            await ensure_up_to_date(container.engine)
            if settings.run_worker_in_api:
                worker = container.worker()
                worker_task = asyncio.create_task(worker.run())
            runner = container.runner(on_change=worker.wake if worker else None)
            app.state.container = container
            app.state.runner = runner
            app.state.worker = worker
            app.state.actor_resolver = actor_resolver or (_no_auth if not settings.auth_enabled else None)
            if app.state.actor_resolver is None:
                from tenantry.auth.dependencies import build_actor_resolver

                app.state.actor_resolver = build_actor_resolver(settings, container)
            log.info(
                "api.start",
                worker=settings.run_worker_in_api,
                steps={str(s.name): s.configured for s in container.steps},
            )
            yield
            await runner.aclose()
        finally:
            stop_watching()
            if worker is not None and worker_task is not None:
                worker.stop()
                await worker_task
            await container.aclose()

    app = FastAPI(
        title="Tenantry",
        version="0.1.0",
        lifespan=lifespan,
        description="Control plane for self-hosted collaboration workspaces.",
    )
    app.include_router(tenants_router)
    app.include_router(orphans_router)
    install_portal(app)
    app.add_middleware(RefuseAmbiguousJson)
    app.add_middleware(WriteLimit, limit=settings.max_concurrent_writes, wait_seconds=settings.write_queue_seconds)
    _install_error_handlers(app)
    _install_ops_routes(app)
    return app


def _error(status: int, code: str, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    install_store_error_handlers(app)

    @app.exception_handler(AppError)
    async def app_error(_request: Request, exc: AppError) -> JSONResponse:
        return _error(exc.status_code, exc.code, exc.detail, exc.headers)

    async def unauthenticated(request: Request) -> JSONResponse | None:
        # FastAPI parses the body before running dependencies; a caller without a valid token must learn
        # that first, not what was wrong with a body it may not send at all.
        if request.url.path not in PUBLIC_PATHS:
            try:
                await request.app.state.actor_resolver(request)
            except AppError as refused:
                return _error(refused.status_code, refused.code, refused.detail, refused.headers)
        return None

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        if (refused := await unauthenticated(request)) is not None:
            return refused
        problems = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
            message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            if err.get("type") == "extra_forbidden":
                message = "unknown field"
            problems.append({"field": ".".join(loc) or "body", "message": message})
        return _error(422, "validation_error", problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            # The router names only the first route whose path matched; a path can have several.
            allow = ", ".join(allowed_methods(request.app, request.scope))
            if request.method == "OPTIONS":
                return Response(status_code=204, headers={"Allow": allow})
            headers = {**(headers or {}), "Allow": allow}
        documented = getattr(request.scope.get("route"), "include_in_schema", False)  # the API's, not a page's
        if exc.status_code == 400 and documented and (refused := await unauthenticated(request)) is not None:
            return refused  # a body that cannot be read (not UTF-8 JSON, nested too deep): the token first
        code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, exc.detail, headers)


def _install_ops_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz(request: Request) -> JSONResponse:
        """The store and every configured upstream answer; each is named with its state."""
        container: Container = request.app.state.container
        checks: dict[str, dict[str, str]] = {}
        try:
            async with container.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
            checks["store"] = {"status": "ok"}
        except Exception as err:  # noqa: BLE001 - readiness reports any failure instead of raising
            checks["store"] = {"status": "unavailable", "message": type(err).__name__}

        async def ping(step: Step) -> tuple[str, dict[str, str]]:
            try:
                async with asyncio.timeout(5):
                    await step.ping()
                return step.name, {"status": "ok"}
            except NotConfiguredError as err:
                return step.name, {"status": "skipped", "message": err.message}
            except StepError as err:
                return step.name, {"status": "unavailable", "message": err.message}
            except TimeoutError:
                return step.name, {"status": "unavailable", "message": "no answer within 5s"}

        for name, result in await asyncio.gather(*(ping(s) for s in container.steps)):
            checks[name] = result
        ready = all(c["status"] in ("ok", "skipped") for c in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503
        )

    @app.get("/auth/config", tags=["ops"])
    async def auth_config(request: Request) -> dict[str, Any]:
        """The providers this API trusts, and the issuer and public client the CLI logs in with (no secrets)."""
        from tenantry.auth.login import CLI_SCOPE

        settings: Settings = request.app.state.container.settings
        cli_issuer = settings.cli_issuer
        return {
            "authEnabled": settings.auth_enabled,
            "issuer": cli_issuer,
            "cliClientId": settings.oidc_cli_client_id if cli_issuer else None,
            "cliScope": CLI_SCOPE,
            "providers": [{"issuer": i, "clientIds": ids} for i, ids in settings.trusted_providers.items()],
        }

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
