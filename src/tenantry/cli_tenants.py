"""``tenantry tenants …``: the tenant client commands, over the HTTP API like any other client."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

tenants_app = typer.Typer(help="Manage tenants through the HTTP API.", no_args_is_help=True)

UrlOpt = Annotated[str, typer.Option("--url", envvar="TENANTRY_URL", help="Base URL of the Tenantry API")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the raw JSON answer")]
TokenOpt = Annotated[
    str | None,
    typer.Option("--token", envvar="TENANTRY_TOKEN", help="Access token (default: the cached login, if any)"),
]


def _call(
    method: str,
    url: str,
    path: str,
    token: str | None,
    payload: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    *,
    if_match: str | None = None,
) -> Any:
    import httpx

    from tenantry.cli_auth import cached_token

    token = token or cached_token(url)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if if_match:
        headers["If-Match"] = if_match
    try:
        response = httpx.request(
            method, url.rstrip("/") + path, json=payload, params=params, headers=headers, timeout=120
        )
    except httpx.HTTPError as err:
        typer.secho(f"cannot reach {url}: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from err
    try:
        body = response.json() if response.content else None
    except ValueError:  # not JSON (a proxy's error page, say)
        body = None
    if response.status_code >= 400:
        detail = body.get("detail") if isinstance(body, dict) else response.text.strip()[:500]
        typer.secho(
            f"{response.status_code}: {json.dumps(detail) if not isinstance(detail, str) else detail}",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(1)
    return body


def _print_tenant(tenant: dict[str, Any]) -> None:
    typer.echo(f"{tenant['slug']}  {tenant['status']}  {tenant['name']}  (mail domain {tenant['mailDomain']})")
    for step, condition in tenant["conditions"].items():
        when = condition.get("nextAttemptAt")
        retry = f", next attempt {when}" if when and condition["status"] == "error" else ""
        ids = ", ".join(f"{k}={v}" for k, v in condition.get("upstreamIds", {}).items())
        typer.echo(
            f"  {step:<10} {condition['status']:<8} {condition['reason']}: {condition['message']}"
            f" (attempts {condition['attempts']}{retry}){'  [' + ids + ']' if ids else ''}"
        )


def _show(body: dict[str, Any], as_json: bool) -> None:
    typer.echo(json.dumps(body, indent=2)) if as_json else _print_tenant(body)


@tenants_app.command("create")
def tenants_create(
    slug: str,
    name: str,
    url: UrlOpt = "http://127.0.0.1:8000",
    as_json: JsonOpt = False,
    token: TokenOpt = None,
    mail_domain: Annotated[str | None, typer.Option(help="Custom mail domain")] = None,
    quota_bytes: Annotated[int | None, typer.Option(help="Files quota in bytes")] = None,
) -> None:
    """Create a tenant and show it as it stands after its first reconcile."""
    payload: dict[str, Any] = {"slug": slug, "name": name}
    if mail_domain is not None:
        payload["mailDomain"] = mail_domain
    if quota_bytes is not None:
        payload["quotaBytes"] = quota_bytes
    body = _call("POST", url, "/tenants", token, payload)
    typer.echo(json.dumps(body, indent=2)) if as_json else _print_tenant(body)


@tenants_app.command("list")
def tenants_list(
    url: UrlOpt = "http://127.0.0.1:8000",
    as_json: JsonOpt = False,
    token: TokenOpt = None,
    status: Annotated[str | None, typer.Option(help="Only tenants in this status")] = None,
    limit: int = 50,
    offset: int = 0,
) -> None:
    """List tenants you may see."""
    params: dict[str, Any] = {"limit": limit, "offset": offset, "count": "true"}
    if status:
        params["status"] = status
    body = _call("GET", url, "/tenants", token, params=params)
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    for tenant in body["items"]:
        steps = " ".join(f"{k}={v}" for k, v in tenant["provisioningStatus"].items())
        typer.echo(f"{tenant['slug']:<24} {tenant['status']:<9} {steps}")
    typer.echo(f"({len(body['items'])} of {body['total']})")


@tenants_app.command("show")
def tenants_show(
    slug: str, url: UrlOpt = "http://127.0.0.1:8000", as_json: JsonOpt = False, token: TokenOpt = None
) -> None:
    """Show one tenant with the conditions of each step."""
    _show(_call("GET", url, f"/tenants/{slug}", token), as_json)


@tenants_app.command("reconcile")
def tenants_reconcile(
    slug: str, url: UrlOpt = "http://127.0.0.1:8000", as_json: JsonOpt = False, token: TokenOpt = None
) -> None:
    """Reconcile a tenant now (also retries steps stopped by a permanent error)."""
    _show(_call("POST", url, f"/tenants/{slug}/reconcile", token), as_json)


IfMatchOpt = Annotated[str | None, typer.Option("--if-match", help="Act only if the tenant's ETag is still this one")]


def _lifecycle_command(action: str, doc: str) -> None:
    """``tenants <action> SLUG``: POST /tenants/{slug}/<action>, honouring --if-match."""

    def command(
        slug: str,
        url: UrlOpt = "http://127.0.0.1:8000",
        as_json: JsonOpt = False,
        token: TokenOpt = None,
        if_match: IfMatchOpt = None,
    ) -> None:
        _show(_call("POST", url, f"/tenants/{slug}/{action}", token, if_match=if_match), as_json)

    command.__doc__ = doc
    tenants_app.command(action)(command)


_lifecycle_command(
    "suspend", "Cut the tenant's access everywhere (group marked, mail domain and space disabled); nothing is deleted."
)
_lifecycle_command("resume", "Give a suspended tenant its access back, exactly as it was.")
_lifecycle_command("restore", "Bring a deleted tenant back while its grace period lasts.")


@tenants_app.command("delete")
def tenants_delete(
    slug: str,
    url: UrlOpt = "http://127.0.0.1:8000",
    as_json: JsonOpt = False,
    token: TokenOpt = None,
    if_match: IfMatchOpt = None,
    purge_now: Annotated[bool, typer.Option("--purge-now", help="Skip the grace period (platform admins)")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
) -> None:
    """Delete a tenant: disabled at once, purged when the grace period ends (restore brings it back until then)."""
    if not yes:
        typer.confirm(f"Delete the workspace {slug!r}?", abort=True)
    params = {"purge": "now"} if purge_now else None
    _show(_call("DELETE", url, f"/tenants/{slug}", token, params=params, if_match=if_match), as_json)


@tenants_app.command("plan")
def tenants_plan(
    slug: str, url: UrlOpt = "http://127.0.0.1:8000", as_json: JsonOpt = False, token: TokenOpt = None
) -> None:
    """Show what a reconcile would change in each upstream, without changing anything."""
    body = _call("GET", url, f"/tenants/{slug}/plan", token)
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    typer.echo(f"{body['slug']}  {body['status']}  (generation {body['generation']})")
    for step in body["steps"]:
        heading = f"  {step['step']}"
        if step["error"]:
            typer.echo(f"{heading}: could not plan: {step['error']}")
            continue
        typer.echo(f"{heading}{': ' + step['note'] if step['note'] else ''}")
        for change in step["changes"] or []:
            typer.echo(
                f"    {change['action']:<9} {change['target']}{'  (' + change['note'] + ')' if change['note'] else ''}"
            )
            for field, diff in change["changes"].items():
                typer.echo(f"              {field}: {diff['now']!r} -> {diff['wanted']!r}")
        if not step["changes"]:
            typer.echo("    nothing")
