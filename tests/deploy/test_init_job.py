"""The compose stack's init job (deploy/compose/init/tenantry_init.py) against in-memory upstreams."""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import stat
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.deploy.support import INIT_SCRIPT


@pytest.fixture
def init(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("tenantry_init_under_test", INIT_SCRIPT)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    env = {
        "INIT_OUTPUT": str(tmp_path / "run" / "init.env"),
        "INIT_BASE_DOMAIN": "tenantry.test",
        "INIT_STALWART_URL": "https://mail.tenantry.test",
        "INIT_STALWART_ADMIN": "admin",
        "INIT_STALWART_ADMIN_PASSWORD": "admin-pw",
        "INIT_AUTHENTIK_URL": "https://auth.tenantry.test",
        "INIT_OCIS_URL": "https://cloud.tenantry.test",
        "INIT_OCIS_CLIENT_ID": "web",
        "INIT_OCIS_USERNAME": "svc-tenantry-files",
        "INIT_OCIS_APP_PASSWORD": "app-pw",
        "INIT_TIMEOUT_SECONDS": "5",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return module


def basic(request: httpx.Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.startswith("Basic "):
        return base64.b64decode(header[6:]).decode()
    return header or None


class Upstreams:
    """Stalwart (starting in bootstrap mode), authentik's token endpoint and oCIS, as far as the job uses them."""

    def __init__(self) -> None:
        self.bootstrapped = False
        self.account_password: str | None = None
        self.api_keys: list[str] = []
        self.ocis_users: set[str] = set()
        self.app_tokens: list[str] = []
        self.calls: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        host, path = request.url.host, request.url.path
        self.calls.append(f"{request.method} {host}{path}")
        if host == "mail.tenantry.test":
            return self.stalwart(request, path)
        if host == "auth.tenantry.test" and path == "/application/o/token/":
            form = dict(x.split("=", 1) for x in request.content.decode().split("&"))
            ok = form == {
                "grant_type": "client_credentials",
                "client_id": "web",
                "username": "svc-tenantry-files",
                "password": "app-pw",
                "scope": "openid+profile+email+ocis-roles",
            }
            return httpx.Response(200, json={"access_token": "jwt"}) if ok else httpx.Response(400)
        if host == "cloud.tenantry.test":
            return self.ocis(request, path)
        return httpx.Response(404)

    def stalwart(self, request: httpx.Request, path: str) -> httpx.Response:
        who = basic(request)
        admin = who == "admin:admin-pw"
        owner = self.account_password and who == f"svc-tenantry@tenantry.test:{self.account_password}"
        if path == "/jmap/session":
            known = admin or owner or (who or "").removeprefix("Bearer ") in self.api_keys
            return httpx.Response(200 if known else 401, json={})
        if not (admin or owner):
            return httpx.Response(401)
        method, args, call = json.loads(request.content)["methodCalls"][0]
        result: dict[str, Any]
        if not self.bootstrapped and method != "x:Bootstrap/set":
            return httpx.Response(200, json={"methodResponses": [["error", {"type": "forbidden"}, call]]})
        if method == "x:Bootstrap/set":
            assert args["update"]["singleton"]["dataStore"] == {"@type": "RocksDb", "path": "/var/lib/stalwart/"}
            self.bootstrapped = True
            result = {"updated": {"singleton": None}}
        elif method == "x:Domain/query":
            result = {"ids": ["d1"] if args["filter"]["name"] == "tenantry.test" else []}
        elif method == "x:Account/query":
            result = {"ids": ["a1"] if self.account_password else []}
        elif method == "x:Account/set":
            change = next(iter((args.get("create") or args.get("update")).values()))
            if "create" in args:
                assert change["roles"] == {"@type": "Admin"}
                assert change["domainId"] == "d1"
            self.account_password = change["credentials"]["0"]["secret"]
            result = {"created": {"a": {"id": "a1"}}} if "create" in args else {"updated": {"a1": None}}
        elif method == "x:ApiKey/set":
            assert owner, "an API key belongs to its creator: created as svc-tenantry"
            self.api_keys.append(f"API_{len(self.api_keys)}")
            result = {"created": {"k": {"id": "c1", "secret": self.api_keys[-1]}}}
        else:
            return httpx.Response(200, json={"methodResponses": [["error", {"type": "unknownMethod"}, call]]})
        return httpx.Response(200, json={"methodResponses": [[method, result, call]]})

    def ocis(self, request: httpx.Request, path: str) -> httpx.Response:
        who = basic(request)
        if path == "/graph/v1.0/me":
            if who == "Bearer jwt":
                self.ocis_users.add("svc-tenantry-files")
                return httpx.Response(200, json={"onPremisesSamAccountName": "svc-tenantry-files"})
            if who and who.split(":", 1)[1] in self.app_tokens:
                return httpx.Response(200, json={})
            return httpx.Response(401)
        if path == "/auth-app/tokens" and request.method == "POST" and who == "Bearer jwt":
            assert "svc-tenantry-files" in self.ocis_users
            assert request.url.params["expiry"] == "8760h"
            self.app_tokens.append(f"app-token-{len(self.app_tokens)}")
            return httpx.Response(200, json={"token": self.app_tokens[-1], "label": "Generated via API"})
        return httpx.Response(404)


def test_first_run_then_a_rerun_keeps_what_works(init: ModuleType, tmp_path: Path) -> None:
    upstreams = Upstreams()
    with httpx.Client(transport=httpx.MockTransport(upstreams.handle)) as http:
        values = init.run(http, pause=0)
    assert values == {
        "TENANTRY_STALWART_API_KEY": "API_0",
        "TENANTRY_OCIS_USERNAME": "svc-tenantry-files",
        "TENANTRY_OCIS_APP_TOKEN": "app-token-0",
    }
    output = tmp_path / "run" / "init.env"
    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    assert init.read_env_file(output) == values
    with httpx.Client(transport=httpx.MockTransport(upstreams.handle)) as http:
        assert init.run(http, pause=0) == values
    assert (upstreams.api_keys, upstreams.app_tokens) == (["API_0"], ["app-token-0"])


def test_rotate_replaces_both(init: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    upstreams = Upstreams()
    with httpx.Client(transport=httpx.MockTransport(upstreams.handle)) as http:
        init.run(http, pause=0)
        monkeypatch.setenv("INIT_ROTATE", "true")
        values = init.run(http, pause=0)
    assert values["TENANTRY_STALWART_API_KEY"] == "API_1"
    assert values["TENANTRY_OCIS_APP_TOKEN"] == "app-token-1"


def test_waits_for_authentik_then_gives_up_with_the_manual_step(init: ModuleType) -> None:
    def refuse_tokens(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.tenantry.test":
            return httpx.Response(400, json={"error": "invalid_grant"})
        return Upstreams().handle(request) if request.url.host != "mail.tenantry.test" else upstreams.handle(request)

    upstreams = Upstreams()
    with httpx.Client(transport=httpx.MockTransport(refuse_tokens)) as http, pytest.raises(init.InitError) as err:
        init.ocis_app_token(http, {}, deadline=0, rotate=False, pause=0)
    assert "authentik to issue a token" in str(err.value)


def test_a_line_break_never_reaches_the_env_file(init: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(init.InitError):
        init.write_env_file(tmp_path / "x.env", {"TENANTRY_OCIS_APP_TOKEN": "a\nTENANTRY_DATABASE_URL=evil"})


def test_the_manual_steps_it_names_are_in_the_guide() -> None:
    guide = (INIT_SCRIPT.parents[2] / "README.md").read_text(encoding="utf-8")
    named = set(re.findall(r'"manual step (\d+)"', INIT_SCRIPT.read_text(encoding="utf-8")))
    assert named == {"6", "7"}
    steps = re.findall(r"^(\d+)\. \*\*([^*]+)\*\*", guide, flags=re.MULTILINE)
    titles = dict(steps)
    assert [int(n) for n, _ in steps] == list(range(1, len(steps) + 1)), "numbered steps, in order"
    assert "Stalwart" in titles["6"]
    assert "oCIS" in titles["7"]
