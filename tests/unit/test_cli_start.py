"""Starting against a store that is not there, or too new, ends with one line that says what to fix."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from tenantry.cli import app

UNREACHABLE = "postgresql+asyncpg://tenantry:s3cret@127.0.0.1:1/tenantry"


def test_serve_and_worker_with_the_store_unreachable_say_so_in_one_line_without_the_password() -> None:
    for command in (["worker"], ["serve", "--no-worker"], ["db", "upgrade"]):
        result = CliRunner().invoke(
            app, command, env={"TENANTRY_DATABASE_URL": UNREACHABLE, "TENANTRY_AUTH_ENABLED": "false"}
        )
        assert result.exit_code == 4, (command, result.output)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, result.stderr
        assert "cannot reach the database at postgresql+asyncpg://tenantry:***@127.0.0.1:1/tenantry" in lines[0]
        assert "TENANTRY_DATABASE_URL" in lines[0]
        assert "s3cret" not in result.output + result.stderr
        assert "Traceback" not in result.stderr


def test_db_upgrade_of_a_database_a_newer_version_migrated_says_so(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/t.db"
    env = {"TENANTRY_DATABASE_URL": url, "TENANTRY_AUTH_ENABLED": "false"}
    assert CliRunner().invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    with sqlite3.connect(tmp_path / "t.db") as db:
        db.execute("UPDATE alembic_version SET version_num = 'ffff99'")
    result = CliRunner().invoke(app, ["db", "upgrade"], env=env)
    assert result.exit_code == 3
    assert "migrated by a newer version of Tenantry" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_refused_setting_is_named_by_its_variable_and_its_value_is_never_repeated() -> None:
    secret = "hunter2-is-a-secret"
    env = {
        "TENANTRY_OIDC_INTROSPECT_CLIENTS": '{"tenantry-cli": 4815162342}',  # a secret that is not a string
        "TENANTRY_WORKER_CONCURRENCY": secret,  # a value pasted into the wrong variable
        "TENANTRY_AUTH_ENABLED": "false",
    }
    result = CliRunner().invoke(app, ["db", "upgrade"], env=env)

    assert result.exit_code == 2, result.output
    assert "TENANTRY_WORKER_CONCURRENCY: Input should be a valid integer" in result.stderr
    assert "TENANTRY_OIDC_INTROSPECT_CLIENTS['tenantry-cli']: Input should be a valid string" in result.stderr
    assert secret not in result.output + result.stderr
    assert "4815162342" not in result.output + result.stderr
    assert "Traceback" not in result.stderr
