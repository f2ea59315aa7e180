"""What the Stalwart sandbox returns and accepts agrees with upstream's schema.json (x:Domain, x:Account, DKIM).

schema.json describes every object as ``schemas[name]``: ``single`` (one ``schemaName``) or ``multiple``
(``variants`` each with a ``name`` that is the ``@type`` and an optional ``schemaName``); the properties of a
schema are ``fields[schemaName]["properties"]``, each with a ``type`` (``string``, ``boolean``, ``number``,
``utcDateTime``, ``objectId``, ``blobId``, ``enum`` → ``enums[enumName]``, ``set`` of ``class``, ``map`` of
``keyClass``→``valueClass``, ``objectList``/``object`` of ``objectName``; ``nullable`` optional) and an
``update`` mode (``serverSet`` for server-computed properties). The checker below walks returned objects
through that description.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

import httpx
import pytest

from tenantry.sandbox.stalwart import StalwartSandbox
from tenantry.sandbox.stalwart_model import DKIM, DOMAIN, GROUP, USER, Prop
from tests.support.openapi import shared_file

API_KEY = "contract-key"
USING = ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"]


class SchemaChecker:
    """Lists every way a JSON value departs from a schema.json object definition."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = schema

    def properties(self, schema_name: str) -> Mapping[str, Any]:
        fields: Mapping[str, Any] = self.schema["fields"].get(schema_name, {})
        return fields.get("properties", {})

    def check_object(self, object_name: str, value: Any, path: str = "", *, top: bool = False) -> list[str]:
        if not isinstance(value, dict):
            return [f"{path or object_name}: expected an object, got {value!r}"]
        definition = self.schema["schemas"].get(object_name)
        if definition is None:
            return [f"{path}: {object_name} is not in the schema"]
        problems: list[str] = []
        if definition["type"] == "multiple":
            variants = {v["name"]: v.get("schemaName") for v in definition["variants"]}
            variant = value.get("@type")
            if variant not in variants:
                return [f"{path}: @type {variant!r} is not a variant of {object_name} ({sorted(variants)})"]
            schema_name = variants[variant]
        else:
            if "@type" in value:
                problems.append(f"{path}: {object_name} has no @type")
            schema_name = definition["schemaName"]
        props = self.properties(schema_name) if schema_name else {}
        for key, item in value.items():
            where = f"{path}/{key}"
            if key == "@type":
                continue
            if top and key == "id":
                if not isinstance(item, str):
                    problems.append(f"{where}: id must be a string")
                continue
            if key not in props:
                problems.append(f"{where}: {key!r} is not a property of {schema_name or object_name}")
                continue
            problems += self.check_type(props[key]["type"], item, where)
        return problems

    def check_type(self, spec: Mapping[str, Any], value: Any, path: str) -> list[str]:
        if value is None:
            return [] if spec.get("nullable") else [f"{path}: null for a non-nullable property"]
        kind = spec["type"]
        if kind in ("object", "objectList", "set", "map"):
            return self._check_collection(spec, value, path)
        ok = {
            "string": lambda: isinstance(value, str) and (spec.get("format") != "emailAddress" or "@" in value),
            "boolean": lambda: isinstance(value, bool),
            "number": lambda: isinstance(value, int | float) and not isinstance(value, bool),
            "utcDateTime": lambda: isinstance(value, str) and _is_datetime(value),
            "objectId": lambda: isinstance(value, str) and bool(value),
            "blobId": lambda: isinstance(value, str),
            "enum": lambda: value in {e["name"] for e in self.schema["enums"][spec["enumName"]]},
        }.get(kind)
        if ok is None:
            return [f"{path}: unknown schema type {kind}"]
        return [] if ok() else [f"{path}: {value!r} is not a valid {kind} ({json.dumps(spec)})"]

    def _check_collection(self, spec: Mapping[str, Any], value: Any, path: str) -> list[str]:
        kind = spec["type"]
        if kind == "object":
            return self.check_object(spec["objectName"], value, path)
        if not isinstance(value, dict):
            return [f"{path}: a {kind} is a JSON object on this wire, got {type(value).__name__}"]
        problems: list[str] = []
        for key, item in value.items():
            where = f"{path}/{key}"
            if kind == "objectList":
                problems += [] if key.isdigit() else [f"{where}: list keys are indexes"]
                problems += self.check_object(spec["objectName"], item, where)
            elif kind == "set":
                problems += [] if item is True else [f"{where}: set members map to true"]
                problems += self.check_type(spec["class"], key, where)
            else:
                problems += self.check_type(spec["keyClass"], key, where)
                problems += self.check_type(spec["valueClass"], item, where)
        return problems


def _is_datetime(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


@pytest.fixture(scope="module")
def checker() -> SchemaChecker:
    path = shared_file("stalwart", "schema.json")
    return SchemaChecker(json.loads(path.read_text(encoding="utf-8")))


@pytest.fixture
def sandbox() -> StalwartSandbox:
    return StalwartSandbox(api_keys=[API_KEY], fast_dkim=True)


@pytest.fixture
async def client(sandbox: StalwartSandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(sandbox.app),
        base_url="http://stalwart.test",
        headers={"Authorization": f"Bearer {API_KEY}"},
    ) as c:
        yield c


async def _jmap(client: httpx.AsyncClient, *calls: list[Any]) -> list[list[Any]]:
    response = await client.post("/jmap/", json={"using": USING, "methodCalls": list(calls)})
    assert response.status_code == 200, response.text
    answers: list[list[Any]] = response.json()["methodResponses"]
    assert all(a[0] != "error" for a in answers), answers
    return answers


async def _populate(client: httpx.AsyncClient) -> None:
    """Objects with every property family set, so the reads below exercise all of them."""
    _, accounts = await _jmap(
        client,
        [
            "x:Domain/set",
            {
                "create": {
                    "d": {
                        "name": "example.com",
                        "aliases": {"example.net": True},
                        "description": "Main",
                        "catchAllAddress": "all@example.com",
                        "memberTenantId": "t1",
                        "logo": "data:,x",
                        "subAddressing": {"@type": "Disabled"},
                        "allowRelaying": True,
                        "certificateManagement": {
                            "@type": "Automatic",
                            "acmeProviderId": "p1",
                            "subjectAlternativeNames": {"mx.example.com": True},
                        },
                        "dnsManagement": {"@type": "Automatic", "dnsServerId": "s1", "origin": "example.com"},
                    },
                    "m": {"name": "manual.test", "dkimManagement": {"@type": "Manual"}, "reportAddressUri": None},
                }
            },
            "0",
        ],
        [
            "x:Account/set",
            {
                "create": {
                    "g": {
                        "@type": "Group",
                        "name": "sales",
                        "domainId": "#d",
                        "description": "Sales",
                        "roles": {"@type": "Custom", "roleIds": {"r1": True}},
                        "quotas": {"maxDiskQuota": 1024},
                    },
                    "u": {
                        "@type": "User",
                        "name": "alice",
                        "domainId": "#d",
                        "description": "Alice",
                        "aliases": {"0": {"name": "ali", "domainId": "#d", "description": "short"}},
                        "credentials": {
                            "0": {
                                "@type": "Password",
                                "secret": "correct horse battery",
                                "allowedIps": {"10.0.0.0/8": True},
                            }
                        },
                        "memberGroupIds": {"#g": True},
                        "memberTenantId": "t1",
                        "locale": "de_DE",
                        "timeZone": "Europe/Berlin",
                        "roles": {"@type": "Admin"},
                        "permissions": {"@type": "Merge", "enabledPermissions": {"emailSend": True}},
                        "quotas": {"maxEmails": 10, "maxDiskQuota": 1_000_000},
                        "encryptionAtRest": {"@type": "Aes256", "allowSpamTraining": False},
                    },
                }
            },
            "1",
        ],
    )
    assert "notCreated" not in accounts[1], accounts[1]


async def _read_all(client: httpx.AsyncClient, name: str) -> list[dict[str, Any]]:
    [[_, result, _]] = await _jmap(client, [f"x:{name}/get", {"ids": None, "properties": None}, "g"])
    items: list[dict[str, Any]] = result["list"]
    return items


async def test_checker_flags_an_invented_property_a_wrong_type_and_a_bad_variant(checker: SchemaChecker) -> None:
    problems = checker.check_object(
        "x:Domain",
        {"id": "a", "name": "a.test", "bogus": 1, "isEnabled": "yes", "dkimManagement": {"@type": "Sometimes"}},
        top=True,
    )
    assert len(problems) == 3
    assert any("bogus" in p for p in problems)
    assert checker.check_object("x:Account", {"@type": "Group", "credentials": {}}, top=True)


@pytest.mark.parametrize("name", ["Domain", "Account", "DkimSignature"])
async def test_every_returned_property_exists_in_the_schema_with_a_compatible_type(
    sandbox: StalwartSandbox, client: httpx.AsyncClient, checker: SchemaChecker, name: str
) -> None:
    await _populate(client)
    for domain in sandbox.domains():
        sandbox.generate_dkim_now(domain["id"])
    items = await _read_all(client, name)
    assert items, f"no {name} objects to check"
    if name == "Account":
        assert {i["@type"] for i in items} == {"User", "Group"}
    problems = [p for item in items for p in checker.check_object(f"x:{name}", item, item["id"], top=True)]
    assert problems == []


async def test_defaults_filled_by_the_sandbox_are_the_schema_defaults(
    sandbox: StalwartSandbox, checker: SchemaChecker
) -> None:
    domain_id = sandbox.add_domain("example.com")
    sandbox.generate_dkim_now(domain_id)
    [domain] = sandbox.domains()
    key = sandbox.dkim_keys(domain_id)[0]
    fields = checker.schema["fields"]
    for record, schema_name in (
        (domain, "x:Domain"),
        (key, "x:Dkim1Signature"),
        (domain["dkimManagement"], "x:DkimManagementProperties"),
    ):
        defaults = fields[schema_name]["defaults"]
        assert {k: record.get(k) for k in defaults} == defaults, schema_name


@pytest.mark.parametrize(
    ("schema_name", "props"),
    [("x:Domain", DOMAIN), ("x:UserAccount", USER), ("x:GroupAccount", GROUP), ("x:Dkim1Signature", DKIM)],
)
def test_sandbox_knows_exactly_the_schema_properties_and_which_are_server_set(
    checker: SchemaChecker, schema_name: str, props: Mapping[str, Prop]
) -> None:
    schema_props = checker.properties(schema_name)
    assert set(props) == set(schema_props)
    server_set = {k for k, v in schema_props.items() if v.get("update") == "serverSet"}
    assert {k for k, p in props.items() if p.server_set} == server_set
