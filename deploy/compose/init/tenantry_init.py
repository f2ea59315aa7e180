"""The compose stack's one-shot init job: what an API allows and authentik's blueprints cannot do.

1. Stalwart: complete its first-start setup if it is still in bootstrap mode (server name, default domain,
   RocksDB under /var/lib/stalwart), make an administrator account for Tenantry, and an API key of that account
   (TENANTRY_STALWART_API_KEY).
2. oCIS: sign Tenantry's service user (svc-tenantry-files, made by blueprint 30-ocis.yaml) in once with its
   authentik app password, so that oCIS creates it with the Space Admin role its `roles` claim names, then
   create an oCIS app token for it (TENANTRY_OCIS_USERNAME, TENANTRY_OCIS_APP_TOKEN).

The results go to INIT_OUTPUT (KEY=VALUE lines, mode 0600), which the Tenantry image's entry point loads
(INIT_ENV_FILE). A credential already there that still works is kept, so running the job again is safe; set
INIT_ROTATE=true to replace them. Each failure names the manual step of deploy/README.md that does the same.

Runs with the Tenantry image's Python (httpx); configured only through the environment (compose.yaml).
"""

from __future__ import annotations

import os
import secrets
import ssl
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx

# The Tenantry settings this job provides; tests/deploy checks they are real settings.
PROVIDES = ("TENANTRY_STALWART_API_KEY", "TENANTRY_OCIS_USERNAME", "TENANTRY_OCIS_APP_TOKEN")

JMAP_USING = ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"]
STALWART_ACCOUNT = "svc-tenantry"
OCIS_SCOPE = "openid profile email ocis-roles"

T = TypeVar("T")


class InitError(Exception):
    """A step that failed, with the manual step of deploy/README.md that does the same by hand."""

    def __init__(self, message: str, manual: str) -> None:
        super().__init__(message)
        self.manual = manual


class NotReadyError(Exception):
    """The upstream is not ready for this step yet; wait and try again."""


def say(message: str) -> None:
    print(f"tenantry-init: {message}", flush=True)


def setting(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if not value:
        raise InitError(f"{name} is not set", "set it in compose.yaml / .env")
    return value


def retry(what: str, attempt: Callable[[], T], deadline: float, pause: float = 5.0) -> T:
    """Call ``attempt`` until it returns, while it raises NotReadyError or a transport error, until ``deadline``."""
    last = ""
    while True:
        try:
            return attempt()
        except (NotReadyError, httpx.TransportError) as err:
            last = str(err) or type(err).__name__
        if time.monotonic() >= deadline:
            raise InitError(f"gave up waiting for {what}: {last}", "see the service's logs")
        say(f"waiting for {what} ({last})")
        time.sleep(pause)


# -- the output file ---------------------------------------------------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key] = value
    return values


def write_env_file(path: Path, values: Mapping[str, str]) -> None:
    """Write KEY=VALUE lines atomically, readable by the owner only. Values are taken verbatim (no quoting)."""
    for key, value in values.items():
        if "\n" in value or "\r" in value:
            raise InitError(f"{key} holds a line break", "report this as a bug")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("# Written by the tenantry-init job (deploy/compose/init/tenantry_init.py). Do not edit.\n")
        fh.writelines(f"{key}={value}\n" for key, value in sorted(values.items()))
    partial.replace(path)


# -- Stalwart ----------------------------------------------------------------------------------------------------


class Stalwart:
    """Just enough of Stalwart's JMAP management API (POST /jmap/, urn:stalwart:jmap, x:<Object>/<method>)."""

    def __init__(self, http: httpx.Client, url: str) -> None:
        self.http = http
        self.url = url.rstrip("/")

    def call(
        self, auth: httpx.Auth | None, method: str, args: dict[str, Any], headers: Mapping[str, str] | None = None
    ) -> Any:
        response = self.http.post(
            f"{self.url}/jmap/",
            json={"using": JMAP_USING, "methodCalls": [[method, args, "0"]]},
            auth=auth,
            headers=dict(headers or {}),
        )
        if response.status_code in (502, 503, 504):
            raise NotReadyError(f"Stalwart answered {response.status_code}")
        if response.status_code != 200:
            raise InitError(f"Stalwart refused {method}: {response.status_code} {response.text[:300]}", "manual step 6")
        name, result, _ = response.json()["methodResponses"][0]
        if name == "error":
            raise StalwartMethodError(method, result)
        return result

    def session_ok(self, auth: httpx.Auth | None, headers: Mapping[str, str] | None = None) -> bool:
        response = self.http.get(f"{self.url}/jmap/session", auth=auth, headers=dict(headers or {}))
        if response.status_code in (502, 503, 504):
            raise NotReadyError(f"Stalwart answered {response.status_code}")
        return response.status_code == 200


class StalwartMethodError(Exception):
    def __init__(self, method: str, result: Mapping[str, Any]) -> None:
        super().__init__(f"{method}: {result.get('type')}: {result.get('description', '')}")
        self.type = str(result.get("type"))


def stalwart_api_key(
    http: httpx.Client, existing: Mapping[str, str], deadline: float, rotate: bool, pause: float = 5.0
) -> str:
    stalwart = Stalwart(http, setting("INIT_STALWART_URL"))
    domain = setting("INIT_BASE_DOMAIN").lower()
    admin = httpx.BasicAuth(setting("INIT_STALWART_ADMIN", "admin"), setting("INIT_STALWART_ADMIN_PASSWORD"))

    key = existing.get("TENANTRY_STALWART_API_KEY")
    if key and not rotate:
        bearer = {"Authorization": f"Bearer {key}"}
        if retry("Stalwart", lambda: stalwart.session_ok(None, bearer), deadline, pause):
            say("Stalwart: the API key in the output file still works; kept")
            return key

    if not retry("Stalwart", lambda: stalwart.session_ok(admin), deadline, pause):
        raise InitError("Stalwart refuses the administrator (STALWART_ADMIN_PASSWORD)", "manual step 6")

    def find_domain() -> str | None:
        try:
            ids = stalwart.call(admin, "x:Domain/query", {"filter": {"name": domain}})["ids"]
        except StalwartMethodError as err:
            raise NotReadyError(str(err)) from err
        return ids[0] if ids else None

    try:
        domain_id = find_domain()
    except NotReadyError:
        # Bootstrap mode (no config.json yet) allows only x:Bootstrap: finish the first-start setup.
        say("Stalwart: completing the first-start setup")
        setup = {
            "serverHostname": f"mail.{domain}",
            "defaultDomain": domain,
            "requestTlsCertificate": False,
            "generateDkimKeys": True,
            "dataStore": {"@type": "RocksDb", "path": "/var/lib/stalwart/"},
        }
        try:
            stalwart.call(admin, "x:Bootstrap/set", {"update": {"singleton": setup}})
        except StalwartMethodError as err:
            raise InitError(f"Stalwart's first-start setup failed: {err}", "manual step 6") from err
        domain_id = retry("Stalwart to leave bootstrap mode", find_domain, deadline, pause)
    if domain_id is None:
        created = stalwart.call(admin, "x:Domain/set", {"create": {"d": {"name": domain}}})
        domain_id = created.get("created", {}).get("d", {}).get("id")
        if not domain_id:
            raise InitError(f"Stalwart did not create {domain}: {created.get('notCreated')}", "manual step 6")

    password = secrets.token_urlsafe(24)
    credentials = {"0": {"@type": "Password", "secret": password}}
    found = stalwart.call(admin, "x:Account/query", {"filter": {"name": STALWART_ACCOUNT, "domainId": domain_id}})
    if found["ids"]:
        result = stalwart.call(admin, "x:Account/set", {"update": {found["ids"][0]: {"credentials": credentials}}})
        failed = result.get("notUpdated")
    else:
        account = {
            "@type": "User",
            "name": STALWART_ACCOUNT,
            "domainId": domain_id,
            "description": "Tenantry (owner of its API key)",
            "roles": {"@type": "Admin"},
            "credentials": credentials,
        }
        result = stalwart.call(admin, "x:Account/set", {"create": {"a": account}})
        failed = result.get("notCreated")
    if failed:
        raise InitError(f"Stalwart refused the account {STALWART_ACCOUNT}: {failed}", "manual step 6")

    # An API key belongs to the account that creates it, so create it as that account.
    owner = httpx.BasicAuth(f"{STALWART_ACCOUNT}@{domain}", password)
    created = stalwart.call(
        owner, "x:ApiKey/set", {"create": {"k": {"description": "tenantry", "permissions": {"@type": "Inherit"}}}}
    )
    secret = created.get("created", {}).get("k", {}).get("secret")
    if not secret:
        raise InitError(f"Stalwart did not create an API key: {created.get('notCreated')}", "manual step 6")
    say(f"Stalwart: API key created for {STALWART_ACCOUNT}@{domain}")
    return str(secret)


# -- oCIS --------------------------------------------------------------------------------------------------------


def ocis_app_token(
    http: httpx.Client, existing: Mapping[str, str], deadline: float, rotate: bool, pause: float = 5.0
) -> tuple[str, str]:
    ocis = setting("INIT_OCIS_URL").rstrip("/")
    authentik = setting("INIT_AUTHENTIK_URL").rstrip("/")
    username = setting("INIT_OCIS_USERNAME")

    def me(auth: httpx.Auth | None, headers: Mapping[str, str] | None = None) -> int:
        response = http.get(f"{ocis}/graph/v1.0/me", auth=auth, headers=dict(headers or {}))
        if response.status_code in (502, 503, 504):
            raise NotReadyError(f"oCIS answered {response.status_code}")
        return response.status_code

    token = existing.get("TENANTRY_OCIS_APP_TOKEN")
    reusable = token and existing.get("TENANTRY_OCIS_USERNAME") == username and not rotate
    if reusable and retry("oCIS", lambda: me(httpx.BasicAuth(username, token)), deadline, pause) == 200:
        say("oCIS: the app token in the output file still works; kept")
        return username, str(token)

    def access_token() -> str:
        # authentik's client credentials with a username and app password act as that user; the token comes
        # from the provider oCIS trusts (client "web"), so its issuer is OCIS_OIDC_ISSUER.
        response = http.post(
            f"{authentik}/application/o/token/",
            data={
                "grant_type": "client_credentials",
                "client_id": setting("INIT_OCIS_CLIENT_ID", "web"),
                "username": username,
                "password": setting("INIT_OCIS_APP_PASSWORD"),
                "scope": OCIS_SCOPE,
            },
        )
        if response.status_code != 200:
            # Before the worker has applied the blueprints the provider or the user does not exist yet.
            raise NotReadyError(f"authentik answered {response.status_code} {response.text[:200]}")
        return str(response.json()["access_token"])

    bearer = {"Authorization": f"Bearer {retry('authentik to issue a token', access_token, deadline, pause)}"}

    def signed_in() -> None:
        status = me(None, bearer)
        if status != 200:
            raise NotReadyError(f"oCIS answered {status} to {username}'s first sign-in")

    retry(f"oCIS to accept {username}", signed_in, deadline, pause)
    say(f"oCIS: {username} is known (role from its `roles` claim)")

    expiry = setting("INIT_OCIS_TOKEN_EXPIRY", "8760h")
    response = http.post(f"{ocis}/auth-app/tokens", params={"expiry": expiry}, headers=bearer)
    if response.status_code not in (200, 201):
        raise InitError(
            f"oCIS refused to create an app token: {response.status_code} {response.text[:300]}", "manual step 7"
        )
    app_token = response.json().get("token")
    if not app_token:
        raise InitError(f"oCIS answered without a token: {response.text[:300]}", "manual step 7")
    say(f"oCIS: app token created for {username} (valid {expiry})")
    return username, str(app_token)


# -- main --------------------------------------------------------------------------------------------------------


def http_client() -> httpx.Client:
    context = ssl.create_default_context()
    ca_bundle = os.environ.get("TENANTRY_CA_BUNDLE")
    if ca_bundle:
        context.load_verify_locations(cafile=ca_bundle)
    return httpx.Client(verify=context, timeout=httpx.Timeout(30.0, connect=10.0))


def run(http: httpx.Client, pause: float = 5.0) -> dict[str, str]:
    output = Path(setting("INIT_OUTPUT", "/run/tenantry/init.env"))
    deadline = time.monotonic() + float(os.environ.get("INIT_TIMEOUT_SECONDS", "900"))
    rotate = os.environ.get("INIT_ROTATE", "").lower() in {"1", "true", "yes"}
    existing = read_env_file(output)
    values = dict(existing)
    values["TENANTRY_STALWART_API_KEY"] = stalwart_api_key(http, existing, deadline, rotate, pause)
    write_env_file(output, values)
    values["TENANTRY_OCIS_USERNAME"], values["TENANTRY_OCIS_APP_TOKEN"] = ocis_app_token(
        http, existing, deadline, rotate, pause
    )
    write_env_file(output, values)
    say(f"wrote {', '.join(PROVIDES)} to {output}")
    return values


def main() -> int:
    try:
        with http_client() as http:
            run(http)
    except InitError as err:
        say(f"failed: {err}. By hand: deploy/README.md, {err.manual}.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
