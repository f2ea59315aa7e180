"""The ``tenantry`` command: serve, worker, demo, sandbox, db upgrade, and the tenants client commands."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated, Any

import typer

from tenantry.cli_tenants import UrlOpt, tenants_app
from tenantry.config import Settings, describe_error

app = typer.Typer(
    help="Tenantry: workspaces across authentik, Stalwart and oCIS, kept in step.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(tenants_app, name="tenants")


# The store is down, refuses us, or does not exist: the ways a start fails that are not a bug.
STORE_UNREACHABLE: tuple[type[BaseException], ...] = (OSError, TimeoutError)


def _store_errors() -> tuple[type[BaseException], ...]:
    from sqlalchemy import exc

    return (*STORE_UNREACHABLE, exc.OperationalError, exc.InterfaceError)


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings(**overrides)
    except ValueError as err:
        typer.secho(f"configuration error: {describe_error(err)}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from err


def _configure_logging(settings: Settings) -> None:
    from tenantry.logging import configure_logging

    configure_logging(settings.log_level, json=settings.log_json)


async def _check_schema(settings: Settings) -> None:
    from tenantry.db.engine import create_engine
    from tenantry.db.migrate import SchemaOutOfDateError, ensure_up_to_date

    engine = create_engine(settings)
    try:
        await ensure_up_to_date(engine)
    except SchemaOutOfDateError as err:
        typer.secho(f"refusing to start: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(3) from err
    except _store_errors() as err:
        typer.secho(f"refusing to start: {_unreachable(settings, err)}", fg=typer.colors.RED, err=True)
        raise typer.Exit(4) from err
    finally:
        await engine.dispose()


def _unreachable(settings: Settings, err: BaseException) -> str:
    from sqlalchemy.engine import make_url

    where = make_url(settings.database_url).render_as_string(hide_password=True)
    reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return f"cannot reach the database at {where} (TENANTRY_DATABASE_URL): {reason}"


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration to TENANTRY_DATABASE_URL."""
    from tenantry.db.engine import create_engine
    from tenantry.db.migrate import current_revision, upgrade

    settings = _settings(auth_enabled=False)

    async def run() -> str | None:
        engine = create_engine(settings)
        try:
            await upgrade(engine)
            return await current_revision(engine)
        finally:
            await engine.dispose()

    from alembic.util import CommandError

    try:
        revision = asyncio.run(run())
    except _store_errors() as err:
        typer.secho(_unreachable(settings, err), fg=typer.colors.RED, err=True)
        raise typer.Exit(4) from err
    except CommandError as err:  # the database names a revision this version does not have
        typer.secho(
            f"the database was migrated by a newer version of Tenantry ({err}); run that version or newer",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(3) from err
    typer.echo(f"database is at revision {revision}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    worker: Annotated[bool, typer.Option(help="Run a reconcile worker in this process")] = True,
    processes: Annotated[
        int, typer.Option(min=1, help="API processes on the one port (a Python process serves from one core)")
    ] = 1,
) -> None:
    """Run the HTTP API (with an in-process worker unless --no-worker); exits 0 once stopped by SIGTERM or SIGINT."""
    from tenantry.app import create_app
    from tenantry.serving import serve as run

    settings = _settings(run_worker_in_api=worker)
    if processes > 1 and worker and settings.is_sqlite:
        typer.secho(
            "on SQLite one process runs the reconcile worker: use --no-worker with --processes and run one "
            "`tenantry worker`, or PostgreSQL",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(2)
    _configure_logging(settings)
    asyncio.run(_check_schema(settings))
    if not run(settings, create_app(settings), host=host, port=port, processes=processes):
        raise typer.Exit(1)


@app.command()
def worker(concurrency: Annotated[int | None, typer.Option(help="Tenants reconciled at once")] = None) -> None:
    """Run a reconcile worker process (run several against PostgreSQL to scale out); SIGUSR1 starts a bulk
    resync pass at once."""
    overrides: dict[str, Any] = {"auth_enabled": False}
    if concurrency is not None:
        overrides["worker_concurrency"] = concurrency
    settings = _settings(**overrides)
    _configure_logging(settings)
    asyncio.run(_check_schema(settings))
    asyncio.run(_run_worker(settings))


async def _run_worker(settings: Settings) -> None:
    from tenantry.container import build_container

    container = build_container(settings)
    loop_worker = container.worker()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, loop_worker.stop)
    loop.add_signal_handler(signal.SIGUSR1, loop_worker.resync_soon)  # a bulk resync pass now
    try:
        await loop_worker.run()
    finally:
        await container.aclose()


@app.command()
def sandbox(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="First of three ports: authentik, Stalwart, oCIS")] = 9100,
) -> None:
    """Run the sandbox authentik (with its OIDC issuer), Stalwart and oCIS on three consecutive ports."""
    from tenantry.demo import run_sandbox_forever

    asyncio.run(run_sandbox_forever(host, port))


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port of the API; the sandboxes take the next three")] = 8000,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    smoke: Annotated[bool, typer.Option(help="Create a demo tenant, print it, and exit")] = False,
) -> None:
    """Run the whole product on SQLite against the sandbox upstreams, and print where everything is."""
    from tenantry.demo import run_demo

    code = asyncio.run(run_demo(host=host, port=port, smoke=smoke))
    raise typer.Exit(code)


# -- client commands (the tenants sub-commands live in cli_tenants) ------------------------------------------
@app.command()
def login(
    url: UrlOpt = "http://127.0.0.1:8000",
    client_id: Annotated[
        str | None, typer.Option(help="Machine login: the client id of the authentik provider to log in through")
    ] = None,
    client_secret: Annotated[
        str | None,
        typer.Option(
            envvar="TENANTRY_CLIENT_SECRET",
            help="Machine login as the provider's own ak-<provider>-client_credentials account (no groups), "
            "or base64(username:app-password) to act as that service account",
        ),
    ] = None,
    username: Annotated[
        str | None, typer.Option(help="Machine login as this service account (with --app-password)")
    ] = None,
    app_password: Annotated[
        str | None,
        typer.Option(envvar="TENANTRY_APP_PASSWORD", help="An app password of the --username service account"),
    ] = None,
    issuer: Annotated[
        str | None, typer.Option(help="Machine login: the provider's issuer (default: the one the API lists)")
    ] = None,
) -> None:
    """Log in and cache the token: device login for a person, or a machine login with --client-id."""
    from tenantry.auth.login import LoginError
    from tenantry.cli_auth import login_device, login_machine

    def announce(device: Any) -> None:
        target = device.verification_uri_complete or device.verification_uri
        typer.echo(f"Open {target} and confirm the code {device.user_code} to sign in.")

    def refuse(message: str) -> typer.Exit:
        typer.secho(message, fg=typer.colors.RED, err=True)
        return typer.Exit(2)

    try:
        if client_id:
            if username is not None and not app_password:
                raise refuse("--app-password (or TENANTRY_APP_PASSWORD) is required with --username")
            if username is None and not client_secret:
                raise refuse(
                    "--client-id needs --client-secret (or TENANTRY_CLIENT_SECRET), or --username and --app-password"
                )
            asyncio.run(
                login_machine(
                    url,
                    client_id,
                    client_secret=None if username is not None else client_secret,
                    username=username,
                    app_password=app_password,
                    issuer=issuer,
                )
            )
        elif username is not None or client_secret:
            raise refuse("a machine login needs --client-id")
        else:
            asyncio.run(login_device(url, announce=announce))
    except LoginError as err:
        typer.secho(f"login failed: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from err
    typer.echo("logged in; the tenants commands now use this token")


def main() -> None:
    app(prog_name="tenantry")


if __name__ == "__main__":
    main()
