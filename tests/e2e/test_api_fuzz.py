"""Property-based: no input to any documented operation yields a 500 or an answer outside the OpenAPI document."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tenantry.app import create_app
from tenantry.config import Settings
from tenantry.container import build_container
from tenantry.provisioning.steps import build_steps
from tenantry.sandbox.server import serve_in_thread
from tests.support.fakes import ScriptedProvider

pytestmark = pytest.mark.slow

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def test_no_generated_request_gets_a_server_error_or_an_undocumented_answer(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("the API surface is the same on both stores; fuzzed once, on SQLite")
    settings = make_settings(create_wait_seconds=1)
    steps = build_steps(ScriptedProvider("group"), ScriptedProvider("domain"), ScriptedProvider("drive"))
    app = create_app(settings, container_factory=lambda: build_container(settings, steps=steps))
    with serve_in_thread(app) as url:
        result = subprocess.run(
            [
                str(SCHEMATHESIS),
                "run",
                f"{url}/openapi.json",
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
                "--max-examples",
                "40",
                "--seed",
                "20261128",
                "--no-color",
                "--phases",
                "examples,coverage,fuzzing",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
            check=False,
        )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "passed" in result.stdout
