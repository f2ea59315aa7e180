"""authentik blueprints: authentik's blueprint schema, and what Tenantry and oCIS need from them."""

from __future__ import annotations

import functools
import json
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.deploy.support import (
    Tag,
    all_entries,
    applications,
    blueprint_files,
    compose_resolved,
    entries_of,
    load_blueprint,
    service_environment,
    shared_file,
    walk_tags,
)

PROFILE = "goauthentik.io/providers/oauth2/scope-profile"


@functools.cache
def schema() -> dict[str, Any]:
    with shared_file("authentik", "blueprints-schema.json").open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema()["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def example(node: dict[str, Any]) -> Any:
    """A value of the type a schema node asks for: what an evaluated tag would give there."""
    node = _resolve(node)
    if "enum" in node:
        return node["enum"][0]
    if "const" in node:
        return node["const"]
    kind = node.get("type", "string")
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null")
    if kind == "string":
        return {"uuid": str(uuid.UUID(int=1)), "date-time": "2030-01-01T00:00:00Z", "email": "a@example.com"}.get(
            node.get("format", ""), "x"
        )
    return {"integer": 1, "number": 1, "boolean": True, "array": [], "object": {}}[kind]


def fill(value: Any, node: dict[str, Any]) -> Any:
    """Replace every tag in ``value`` by an example of the type the schema expects at that place."""
    node = _resolve(node)
    if isinstance(value, Tag):
        return example(node)
    if isinstance(value, dict):
        props = node.get("properties", {})
        extra = node.get("additionalProperties")
        return {k: fill(v, props.get(k) or (extra if isinstance(extra, dict) else {})) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, node.get("items", {})) for v in value]
    return value


def evaluated(path: Path) -> dict[str, Any]:
    doc = load_blueprint(path)
    entry_schemas = {
        option["properties"]["model"]["const"]: option["properties"]
        for option in schema()["$defs"]["blueprint_entry"]["oneOf"]
    }
    entries = []
    for entry in doc["entries"]:
        props = entry_schemas.get(entry["model"])
        assert props is not None, f"{path.name}: unknown model {entry['model']}"
        entries.append({key: fill(value, props.get(key, {})) for key, value in entry.items()})
    context = {k: "x" if isinstance(v, Tag) else v for k, v in (doc.get("context") or {}).items()}
    return {**doc, "context": context, "entries": entries}


@pytest.mark.parametrize("path", blueprint_files(), ids=lambda p: p.name)
def test_blueprint_follows_authentiks_schema(path: Path) -> None:
    validator = jsonschema.Draft7Validator(schema(), format_checker=jsonschema.FormatChecker())
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(evaluated(path))]
    assert not errors, errors


def test_the_schema_check_is_not_vacuous() -> None:
    validator = jsonschema.Draft7Validator(schema())
    bad = {
        "version": 1,
        "entries": [
            {
                "model": "authentik_providers_oauth2.oauth2provider",
                "identifiers": {"name": "p"},
                "attrs": {"client_type": "secret", "redirect_uris": "https://x"},
            }
        ],
    }
    assert list(validator.iter_errors(bad))


@pytest.mark.parametrize("path", blueprint_files(), ids=lambda p: p.name)
def test_tags_refer_to_what_exists(path: Path) -> None:
    doc = load_blueprint(path)
    ids = [e["id"] for e in doc["entries"] if "id" in e]
    assert len(ids) == len(set(ids)), "duplicate ids"
    worker_env = service_environment(compose_resolved()["services"]["authentik-worker"])
    models = {k.removeprefix("model_") for k in schema()["$defs"] if k.startswith("model_")}
    for i, entry in enumerate(doc["entries"]):
        for tag in walk_tags(entry):
            if tag.name == "KeyOf":
                assert any(e.get("id") == tag.args for e in doc["entries"][:i]), f"!KeyOf {tag.args} before its entry"
            elif tag.name == "Context":
                assert tag.args in (doc.get("context") or {}), f"!Context {tag.args}"
            elif tag.name == "Find":
                model, (field, _) = tag.args
                assert model in models, model
                fields = _resolve({"$ref": f"#/$defs/model_{model}"}).get("properties", {})
                assert field in fields or field in ("pk", "managed"), f"!Find on {model}.{field}"
            elif tag.name == "Env":
                name = tag.args if isinstance(tag.args, str) else tag.args[0]
                assert name in worker_env, f"!Env {name} is not set on the authentik worker in compose.yaml"
            else:
                assert tag.name in {"Format"}, f"unexpected tag !{tag.name}"
    for tag in walk_tags(doc.get("context") or {}):
        name = tag.args if isinstance(tag.args, str) else tag.args[0]
        assert tag.name != "Env" or name in worker_env, f"!Env {name} is not set on the authentik worker"


def mappings(provider: dict[str, Any]) -> set[str]:
    found = set()
    for item in provider["attrs"]["property_mappings"]:
        if item.name == "Find":
            found.add(item.args[1][1])
        else:
            found.add(f"!{item.name} {item.args}")
    return found


def test_one_provider_per_client_each_with_the_profile_scope() -> None:
    apps = applications()
    assert set(apps) == {"tenantry", "tenantry-cli", "tenantry-machines", "ocis"}
    clients = {slug: p["attrs"]["client_id"] for slug, p in apps.items()}
    assert len(set(clients.values())) == len(clients), "each provider has its own client id"
    assert apps["tenantry"]["attrs"]["client_type"] == "confidential"
    assert isinstance(apps["tenantry"]["attrs"]["client_secret"], Tag), "the portal's secret comes from !Env"
    assert [u["matching_mode"] for u in apps["tenantry"]["attrs"]["redirect_uris"]] == ["strict"]
    assert apps["tenantry-cli"]["attrs"]["client_type"] == "public"
    assert apps["tenantry-machines"]["attrs"]["client_type"] == "confidential"
    assert isinstance(apps["tenantry-machines"]["attrs"]["client_secret"], Tag)
    assert apps["ocis"]["attrs"]["client_type"] == "public"
    for slug, provider in apps.items():
        assert PROFILE in mappings(provider), f"{slug}: without the profile scope tokens carry no groups"
        assert provider["attrs"]["issuer_mode"] == "per_provider", slug
        assert provider["attrs"]["signing_key"].name == "Find", f"{slug}: without a key tokens are HS256"
        assert provider["attrs"]["sub_mode"] == "user_uuid", f"{slug}: one person has one sub across clients"


def test_the_brand_gets_a_device_code_flow() -> None:
    flows = {e["id"]: e for e in entries_of("authentik_flows.flow")}
    brands = entries_of("authentik_brands.brand")
    assert len(brands) == 1
    ref = brands[0]["attrs"]["flow_device_code"]
    assert ref.name == "KeyOf"
    assert flows[ref.args]["attrs"]["designation"] == "stage_configuration"


def test_admin_group_service_account_role_and_token() -> None:
    groups = {e["identifiers"]["name"]: e for e in entries_of("authentik_core.group")}
    assert "tenantry-admins" in groups
    assert not any(g["attrs"].get("is_superuser") for g in groups.values()), "no superuser group"
    users = {e["identifiers"]["username"]: e for e in entries_of("authentik_core.user")}
    svc = users["svc-tenantry"]
    assert svc["attrs"]["type"] == "service_account"
    (role,) = entries_of("authentik_rbac.role")
    # Exactly what Tenantry's authentik step does (integrations/authentik/client.py: /core/groups/ only).
    assert sorted(role["attrs"]["permissions"]) == sorted(
        f"authentik_core.{p}_group" for p in ("view", "add", "change", "delete")
    )
    holder = next(g for g in groups.values() if g["attrs"].get("roles"))
    assert holder["attrs"]["roles"][0].args == role["id"]
    assert svc["attrs"]["groups"][0].args == holder["id"]
    tokens = {e["identifiers"]["identifier"]: e["attrs"] for e in entries_of("authentik_core.token")}
    api = tokens["tenantry-api-token"]
    assert api["intent"] == "api"
    assert api["expiring"] is False
    assert api["user"].args == "svc-tenantry"
    assert isinstance(api["key"], Tag)


def test_ocis_service_user_gets_the_space_admin_role_claim() -> None:
    users = {e["identifiers"]["username"]: e for e in entries_of("authentik_core.user")}
    files = users["svc-tenantry-files"]
    group_ids = [ref.args for ref in files["attrs"]["groups"]]
    groups = {e.get("id"): e["identifiers"]["name"] for e in entries_of("authentik_core.group")}
    assert [groups[g] for g in group_ids] == ["ocis-space-admins"]
    (roles,) = [e for e in entries_of("authentik_providers_oauth2.scopemapping") if e["id"] == "ocis-roles"]
    assert 'name="ocis-space-admins"' in roles["attrs"]["expression"]
    assert "ocisSpaceAdmin" in roles["attrs"]["expression"]
    assert "!KeyOf ocis-roles" in mappings(applications()["ocis"])
    ocis = service_environment(compose_resolved()["services"]["ocis"])
    assert roles["attrs"]["scope_name"] in ocis["WEB_OIDC_SCOPE"].split()
    tokens = {e["identifiers"]["identifier"]: e["attrs"] for e in entries_of("authentik_core.token")}
    assert tokens["tenantry-ocis-app-password"]["intent"] == "app_password"


def test_secrets_come_only_from_the_environment() -> None:
    for entry in all_entries():
        for key in ("client_secret", "key", "password"):
            value = entry.get("attrs", {}).get(key)
            assert value is None or isinstance(value, Tag), f"{entry['model']}: {key} is written in the blueprint"
