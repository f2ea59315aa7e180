"""Property-based: every operation of the OpenAPI document, called with a platform admin's token, with a
garbage token and with none, never answers a 5xx or outside the document; without a valid token every
protected operation answers 401.

TENANTRY_FUZZ_EXAMPLES sets the examples generated per operation (default 8, a few hundred cases in all).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tenantry.app import PUBLIC_PATHS, create_app
from tenantry.config import Settings
from tenantry.container import build_container
from tenantry.sandbox.server import serve_in_thread
from tests.support.auth import Callers, auth_settings, sandbox_suite, scripted_steps

pytestmark = pytest.mark.slow

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
EXAMPLES = int(os.environ.get("TENANTRY_FUZZ_EXAMPLES", "8"))
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
GARBAGE = "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9."  # alg none, no signature


@pytest.fixture
def api(make_settings: Callable[..., Settings], database_url: str) -> Iterator[tuple[str, Callers]]:
    """The API on loopback with authentication on, trusting the sandbox issuer; tenants provisioned by fakes."""
    if not database_url.startswith("sqlite"):
        pytest.skip("the API surface is the same on both stores; fuzzed once, on SQLite")
    suite = sandbox_suite()
    settings = auth_settings(make_settings, suite, create_wait_seconds=1)
    steps, transports = scripted_steps(), suite.transports()
    app = create_app(settings, container_factory=lambda: build_container(settings, steps=steps, transports=transports))
    with serve_in_thread(app) as url:
        yield url, Callers(suite)


def fuzz(url: str, *, authorization: str | None, examples: int, phases: str) -> subprocess.CompletedProcess[str]:
    headers = ["--header", f"Authorization: {authorization}"] if authorization else []
    return subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{url}/openapi.json",
            "--checks",
            CHECKS,
            "--max-examples",
            str(examples),
            "--seed",
            "20261128",
            "--no-color",
            "--phases",
            phases,
            *headers,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
        check=False,
    )


def operations(url: str) -> list[tuple[str, str]]:
    """Every documented operation (method, path with its parameters filled in)."""
    document = httpx.get(f"{url}/openapi.json", timeout=10).json()
    found = []
    for path, item in document["paths"].items():
        concrete = path.replace("{upstream}", "authentik").replace("{slug}", "acme")
        concrete = concrete.replace("{sub}", "someone").replace("{name}", "old.example").replace("{object_id}", "1")
        assert "{" not in concrete, path
        found.extend(
            (method.upper(), concrete) for method in item if method in {"get", "post", "put", "patch", "delete"}
        )
    return found


def test_with_a_platform_admins_token_no_operation_answers_a_5xx_or_outside_the_document(
    api: tuple[str, Callers],
) -> None:
    url, who = api
    assert httpx.get(f"{url}/tenants", headers=who.admin, timeout=10).status_code == 200  # the token is good
    result = fuzz(url, authorization=who.admin["Authorization"], examples=EXAMPLES, phases="examples,coverage,fuzzing")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "passed" in result.stdout


@pytest.mark.parametrize("authorization", [None, GARBAGE], ids=["no token", "garbage token"])
def test_without_a_valid_token_no_operation_answers_a_5xx_or_outside_the_document(
    api: tuple[str, Callers], authorization: str | None
) -> None:
    url, _ = api
    result = fuzz(url, authorization=authorization, examples=max(1, EXAMPLES // 2), phases="examples,fuzzing")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "passed" in result.stdout


@pytest.mark.parametrize("authorization", [None, GARBAGE, "Basic YWRtaW46YWRtaW4="], ids=["none", "garbage", "basic"])
def test_every_protected_operation_answers_401_without_a_valid_token(
    api: tuple[str, Callers], authorization: str | None
) -> None:
    url, _ = api
    headers = {"Authorization": authorization} if authorization else {}
    protected = [(m, p) for m, p in operations(url) if p not in PUBLIC_PATHS]
    assert len(protected) >= 20, protected
    with httpx.Client(base_url=url, timeout=10) as client:
        for method, path in protected:
            body = {"json": {"slug": "acme", "name": "Acme"}} if method in {"POST", "PATCH"} else {}
            answer = client.request(method, path, headers=headers, **body)  # type: ignore[arg-type]
            assert answer.status_code == 401, (method, path, answer.status_code, answer.text)
            assert answer.json()["error"] == "unauthorized"
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert httpx.get(f"{url}/healthz", headers=headers, timeout=10).status_code == 200  # public: no token needed
