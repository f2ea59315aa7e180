"""The `tenantry` command as a user runs it: schema refusal, db upgrade, the client commands, the demo."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import Result
from typer.testing import CliRunner

from tenantry.cli import app as cli_app

pytestmark = pytest.mark.slow

TENANTRY = Path(sys.executable).with_name("tenantry")
MAIL_BASE = "cli.example.test"
PG_ENV = "TENANTRY_TEST_POSTGRES_URL"


def clean_env(config_dir: Path, **values: Any) -> dict[str, str]:
    """This environment without any TENANTRY_* of the caller's, plus ``values`` as TENANTRY_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")}
    env["TENANTRY_CONFIG_DIR"] = str(config_dir)  # never pick up a cached login of whoever runs the tests
    env.update({f"TENANTRY_{key.upper()}": str(value) for key, value in values.items()})
    return env


def run(
    *args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TENANTRY), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def free_ports(count: int = 1) -> int:
    """The first of ``count`` consecutive loopback ports that are free right now."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = int(probe.getsockname()[1])
        if first + count > 65535:
            continue
        with contextlib.ExitStack() as stack:
            try:
                for port in range(first, first + count):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return first
    raise RuntimeError(f"no {count} consecutive free ports")


def wait_until(predicate: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def stop(*processes: subprocess.Popen[Any]) -> list[int | None]:
    """SIGTERM to each, as a service manager would; their exit codes (None: killed after not stopping)."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    codes: list[int | None] = []
    for process in processes:
        try:
            codes.append(process.wait(timeout=20))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            codes.append(None)
    return codes


async def _pg_admin(admin_url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database nobody has migrated yet: a new SQLite file, or a freshly created PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/fresh.db"
        return
    admin = os.environ.get(PG_ENV)
    if not admin:
        pytest.skip(f"PostgreSQL tests need {PG_ENV}")
    name = f"tenantry_cli_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_admin(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield admin.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(_pg_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# -- refusing an unmigrated database --------------------------------------------------------------------


def test_serve_and_worker_refuse_an_unmigrated_database_with_exit_3_and_start_after_db_upgrade(
    empty_database_url: str, tmp_path: Path
) -> None:
    env = clean_env(tmp_path, database_url=empty_database_url, auth_enabled="false", log_level="INFO", log_json="true")
    port = free_ports()
    api_url = f"http://127.0.0.1:{port}"

    attempts = {
        command: subprocess.Popen(
            [str(TENANTRY), *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        for command, args in {"serve": ("serve", "--port", str(port)), "worker": ("worker",)}.items()
    }
    try:
        refused = {command: process.communicate(timeout=60)[1] for command, process in attempts.items()}
    finally:
        stop(*attempts.values())

    for command, stderr in refused.items():
        assert attempts[command].returncode == 3, (command, stderr)
        assert "refusing to start" in stderr
        assert "run `tenantry db upgrade` first" in stderr
        assert "worker.start" not in stderr
    assert not answers(api_url)

    upgraded = run("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "database is at revision" in upgraded.stdout
    log_path = tmp_path / "worker.log"
    with (
        log_path.open("wb") as log,
        subprocess.Popen(
            [str(TENANTRY), "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        ) as server,
        subprocess.Popen([str(TENANTRY), "worker"], env=env, stdout=log, stderr=subprocess.STDOUT) as worker,
    ):
        try:
            wait_until(lambda: server.poll() is not None or answers(api_url), "the API to answer")
            wait_until(
                lambda: worker.poll() is not None or "worker.start" in log_path.read_text(), "the worker to start"
            )
            assert server.poll() is None, "serve exited although the schema is up to date"
            assert worker.poll() is None, log_path.read_text()
        finally:
            server_code, worker_code = stop(server, worker)
    assert worker_code == 0
    assert "worker.stop" in log_path.read_text()
    # uvicorn shuts down gracefully on SIGTERM and then re-raises the signal it caught, by design.
    assert server_code in (0, -signal.SIGTERM)


# -- the client commands against a running API ------------------------------------------------------------


@dataclass
class Api:
    url: str
    home: Path  # TENANTRY_CONFIG_DIR of the client commands: no cached login there

    def cli(self, *args: str, input: str | None = None) -> Result:
        """Run a client command in this process (the API is the subprocess); --url comes from TENANTRY_URL."""
        env = {"TENANTRY_URL": self.url, "TENANTRY_CONFIG_DIR": str(self.home), "TENANTRY_TOKEN": None}
        return CliRunner().invoke(cli_app, list(args), env=env, prog_name="tenantry", input=input)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """`tenantry serve` on SQLite with no upstream configured, so every step is skipped."""
    home = tmp_path_factory.mktemp("cli-api")
    server_env = clean_env(
        home,
        database_url=f"sqlite+aiosqlite:///{home}/tenantry.db",
        auth_enabled="false",
        mail_domain_base=MAIL_BASE,
        log_level="WARNING",
    )
    assert run("db", "upgrade", env=server_env).returncode == 0
    port = free_ports()
    url = f"http://127.0.0.1:{port}"
    with subprocess.Popen(
        [str(TENANTRY), "serve", "--port", str(port)],
        env=server_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as server:
        try:
            wait_until(lambda: server.poll() is not None or answers(url), "the API")
            assert server.poll() is None, "tenantry serve did not start"
            yield Api(url, home)
        finally:
            stop(server)


def test_tenants_create_prints_the_tenant_active_with_unconfigured_steps_skipped(api: Api) -> None:
    result = api.cli("tenants", "create", "acme", "Acme Corp")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"acme  active  Acme Corp  (mail domain acme.{MAIL_BASE})"
    steps = {line.split()[0]: line.split()[1:3] for line in lines[1:]}
    assert steps == {step: ["skipped", "NotConfigured:"] for step in ("authentik", "stalwart", "ocis")}


def test_tenants_create_with_json_prints_the_api_answer_with_the_options_applied(api: Api) -> None:
    result = api.cli(
        "tenants", "create", "beta", "Beta Ltd", "--json", "--mail-domain", "Mail.Beta.Test", "--quota-bytes", "5000"
    )

    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert (body["slug"], body["name"], body["status"]) == ("beta", "Beta Ltd", "active")
    assert (body["mailDomain"], body["quotaBytes"]) == ("mail.beta.test", 5000)
    assert body["provisioningStatus"] == {"authentik": "skipped", "stalwart": "skipped", "ocis": "skipped"}


def test_creating_a_taken_slug_exits_1_with_the_apis_message_on_stderr(api: Api) -> None:
    assert api.cli("tenants", "create", "dupe", "First").exit_code == 0

    # A real process this time: the exit status and the streams are what a shell script sees.
    result = run("tenants", "create", "dupe", "Second", "--url", api.url, env=clean_env(api.home))

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == "409: a tenant with slug 'dupe' already exists"
    assert json.loads(api.cli("tenants", "show", "dupe", "--json").stdout)["name"] == "First"


def test_invalid_input_exits_1_naming_the_field(api: Api) -> None:
    result = api.cli("tenants", "create", "Bad_Slug", "Whatever")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("422: ")
    assert json.loads(result.stderr.removeprefix("422: "))[0]["field"] == "slug"


def test_tenants_list_shows_each_tenant_with_its_step_statuses_and_the_total(api: Api) -> None:
    for slug in ("list-one", "list-two"):
        assert api.cli("tenants", "create", slug, f"Tenant {slug}").exit_code == 0

    plain = api.cli("tenants", "list", "--limit", "500")
    as_json = api.cli("tenants", "list", "--json", "--status", "active", "--limit", "500")
    none_degraded = api.cli("tenants", "list", "--json", "--status", "degraded")

    assert plain.exit_code == 0, plain.output
    rows = {line.split()[0]: line.split()[1:] for line in plain.stdout.splitlines()[:-1]}
    assert rows["list-one"] == ["active", "authentik=skipped", "stalwart=skipped", "ocis=skipped"]
    assert "list-two" in rows
    assert plain.stdout.splitlines()[-1] == f"({len(rows)} of {len(rows)})"
    page = json.loads(as_json.stdout)
    assert {"list-one", "list-two"} <= {t["slug"] for t in page["items"]}
    assert {t["status"] for t in page["items"]} == {"active"}
    assert json.loads(none_degraded.stdout)["items"] == []


def test_tenants_show_prints_one_tenant_with_its_conditions(api: Api) -> None:
    assert api.cli("tenants", "create", "showco", "Show Co").exit_code == 0

    plain = api.cli("tenants", "show", "showco")
    as_json = api.cli("tenants", "show", "showco", "--json")
    missing = api.cli("tenants", "show", "nobody-here")

    assert plain.exit_code == 0, plain.output
    assert plain.stdout.splitlines()[0] == f"showco  active  Show Co  (mail domain showco.{MAIL_BASE})"
    assert "authentik is not configured (set TENANTRY_AUTHENTIK_URL" in plain.stdout
    body = json.loads(as_json.stdout)
    assert body["slug"] == "showco"
    assert set(body["conditions"]) == {"authentik", "stalwart", "ocis"}
    assert missing.exit_code == 1
    assert missing.stderr.strip() == "404: no tenant 'nobody-here'"


def test_tenants_reconcile_requests_a_run_and_prints_the_tenant(api: Api) -> None:
    assert api.cli("tenants", "create", "recon", "Recon").exit_code == 0

    plain = api.cli("tenants", "reconcile", "recon")
    as_json = api.cli("tenants", "reconcile", "recon", "--json")

    assert plain.exit_code == 0, plain.output
    assert plain.stdout.startswith("recon  active  Recon")
    assert json.loads(as_json.stdout)["status"] == "active"
    events = httpx.get(f"{api.url}/tenants/recon/events", timeout=10).json()
    assert [e["kind"] for e in events].count("tenant.reconcile_requested") == 2


def test_client_commands_that_cannot_reach_the_api_exit_1_saying_so(tmp_path: Path) -> None:
    unreachable = Api(f"http://127.0.0.1:{free_ports()}", tmp_path)

    result = unreachable.cli("tenants", "list")

    assert result.exit_code == 1
    assert result.stderr.startswith(f"cannot reach {unreachable.url}")


# -- the demo ---------------------------------------------------------------------------------------------


def test_demo_smoke_creates_a_workspace_that_ends_active_and_exits_0(tmp_path: Path) -> None:
    port = free_ports(4)  # the API and, on the next three, the sandbox authentik, Stalwart and oCIS

    result = run("demo", "--smoke", "--port", str(port), env=clean_env(tmp_path), cwd=tmp_path, timeout=90)

    # The banner prints the run's throwaway demo credentials; report only what follows it.
    outcome = result.stdout[result.stdout.find("tenant acme:") :]
    assert result.returncode == 0, outcome + result.stderr[-2000:]
    assert "tenant acme: status active" in outcome
    for step in ("authentik", "stalwart", "ocis"):
        assert any(line.split()[:2] == [step, "ok"] for line in outcome.splitlines()), outcome
    assert (tmp_path / ".tenantry" / "demo.db").exists()


def test_the_demo_banner_token_lines_work_as_printed(tmp_path: Path) -> None:
    port = free_ports(4)
    demo = subprocess.Popen(
        [str(TENANTRY), "demo", "--port", str(port)],
        env=clean_env(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert demo.stdout is not None
        banner: list[str] = []
        for line in demo.stdout:
            banner.append(line)
            if line.startswith("People sign in"):
                break
        text = "".join(banner)
        start = text.index("  ADMIN_TOKEN=$(")
        commands = [
            line[2:] for line in text[start:].splitlines() if line.startswith("  ") and not line.startswith("  alice")
        ]
        script = "\n".join(
            [
                *commands[:4],
                *commands[4:6],
                "echo",
                "echo admin=${#ADMIN_TOKEN} user=${#USER_TOKEN}",
                f'curl -s -H "Authorization: Bearer $ADMIN_TOKEN" http://127.0.0.1:{port}/tenants',
            ]
        )
        shell = subprocess.run(
            ["bash", "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=Path(__file__).resolve().parents[2],
        )
    finally:
        stop(demo)
    lines = shell.stdout.strip().splitlines()
    created = json.loads(lines[0])
    assert created["slug"] == "acme", shell.stdout[:300]
    lengths = dict(part.split("=") for part in lines[1].split())
    assert int(lengths["admin"]) > 100
    assert int(lengths["user"]) > 100
    listed = json.loads(lines[2])
    assert [t["slug"] for t in listed["items"]] == ["acme"]  # the admin sees the user's workspace


def test_the_lifecycle_commands_suspend_resume_delete_and_restore(api: Api) -> None:
    assert api.cli("tenants", "create", "cycle", "Cycle Ltd").exit_code == 0
    shown = api.cli("tenants", "show", "cycle", "--json")
    etag_stale = api.cli("tenants", "suspend", "cycle", "--if-match", '"0-0-active"')
    assert etag_stale.exit_code == 1
    assert "412" in etag_stale.stderr
    assert json.loads(shown.stdout)["status"] == "active"

    suspended = api.cli("tenants", "suspend", "cycle")
    assert suspended.exit_code == 0, suspended.output
    assert suspended.stdout.splitlines()[0].startswith("cycle  suspended")
    assert api.cli("tenants", "resume", "cycle").stdout.splitlines()[0].startswith("cycle  active")

    refused = api.cli("tenants", "delete", "cycle", input="n\n")
    assert refused.exit_code == 1  # not confirmed: nothing deleted
    assert json.loads(api.cli("tenants", "show", "cycle", "--json").stdout)["status"] == "active"
    deleted = api.cli("tenants", "delete", "cycle", "--yes")
    assert deleted.exit_code == 0, deleted.output
    assert deleted.stdout.splitlines()[0].startswith("cycle  deleting")
    restored = api.cli("tenants", "restore", "cycle")
    assert restored.exit_code == 0, restored.output
    assert restored.stdout.splitlines()[0].startswith("cycle  active")
