"""What the Stalwart client sends and reads must exist, with a compatible type, in Stalwart's schema.json."""

from __future__ import annotations

import contextlib
import functools
import json
import types
import typing
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal

import httpx
import pytest
from pydantic import BaseModel, Field

from tenantry.integrations.stalwart.adapter import StalwartMailProvider
from tenantry.integrations.stalwart.client import DOMAIN_ZONE_PROPERTIES, StalwartClient
from tenantry.integrations.stalwart.models import (
    ACCOUNT_PROPERTIES,
    DKIM_PROPERTIES,
    DOMAIN_PROPERTIES,
    AccountUpdate,
    DkimManagement,
    DkimSignature,
    Domain,
    DomainCreate,
    DomainUpdate,
    EmailAlias,
    GroupAccount,
    GroupCreate,
    UserAccount,
    UserCreate,
)
from tests.support.fake_stalwart import API_KEY, BASE, TENANT, FakeStalwart
from tests.support.openapi import shared_file

# schema.json layout (Stalwart's generated WebUI/registry schema):
#   schemas[<name>] = {"type": "single", "schemaName": S} | {"type": "multiple", "variants": [{name, schemaName?}]}
#   fields[S]["properties"][<prop>] = {"type": {"type": kind, ...}, "update": "mutable"|"serverSet"|...}
#   kinds: string, boolean, number, enum{enumName}, objectId, utcDateTime, blobId, set{class},
#          objectList{objectName}, map{keyClass, valueClass}, object{objectName}; "nullable" may be set.
#   enums[<enumName>] = [{"name": ...}]. "id" and "@type" are JMAP-level and not listed as properties.
IMPLICIT = {"id", "@type"}
SCALAR_KINDS: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "objectId": str,
    "utcDateTime": str,
    "blobId": str,
    "boolean": bool,
    "number": int,
}


@functools.cache
def schema() -> dict[str, Any]:
    with shared_file("stalwart", "schema.json").open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def variants(name: str) -> dict[str, str | None]:
    """Variant tag -> field-set name for a ``multiple`` schema; ``{"": fields}`` for a ``single`` one."""
    entry = schema()["schemas"][name]
    if entry["type"] == "single":
        return {"": entry["schemaName"]}
    return {v["name"]: v.get("schemaName") for v in entry["variants"]}


def properties(field_set: str | None) -> dict[str, Any]:
    if field_set is None:
        return {}
    props: dict[str, Any] = schema()["fields"][field_set]["properties"]
    return props


def enum_names(name: str) -> set[str]:
    return {item["name"] for item in schema()["enums"][name]}


# --- payload checker (what we send) ----------------------------------------------------------------------


def check_object(schema_name: str, payload: Any, where: str, *, sending: bool) -> list[str]:
    """Problems with ``payload`` as a value of the object schema ``schema_name``."""
    if not isinstance(payload, Mapping):
        return [f"{where}: expected a JSON object, got {type(payload).__name__}"]
    options = variants(schema_name)
    if "" in options:
        field_set = options[""]
        if "@type" in payload:
            return [f"{where}: @type sent for single-variant {schema_name}"]
    else:
        tag = payload.get("@type")
        if tag not in options:
            return [f"{where}: @type {tag!r} is not a variant of {schema_name} ({sorted(options)})"]
        field_set = options[tag]
    props = properties(field_set)
    problems = []
    for key, value in payload.items():
        if key == "@type":
            continue
        if key not in props:
            problems.append(f"{where}.{key}: not a property of {field_set or schema_name}")
            continue
        if sending and props[key].get("update") == "serverSet":
            problems.append(f"{where}.{key}: server-set, must never be sent")
        problems += check_value(props[key]["type"], value, f"{where}.{key}", sending=sending)
    return problems


def check_value(spec: Mapping[str, Any], value: Any, where: str, *, sending: bool) -> list[str]:
    kind = spec["type"]
    if value is None:
        return [] if spec.get("nullable") else [f"{where}: null for a non-nullable {kind}"]
    if kind in SCALAR_KINDS:
        expected = SCALAR_KINDS[kind]
        ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
        return [] if ok else [f"{where}: {type(value).__name__} for a {kind}"]
    if kind == "enum":
        ok = value in enum_names(spec["enumName"])
        return [] if ok else [f"{where}: {value!r} not in enum {spec['enumName']}"]
    if kind == "set":
        if not isinstance(value, Mapping) or any(v is not True for v in value.values()):
            return [f"{where}: a set must be a {{value: true}} map"]
        return [p for key in value for p in check_value(spec["class"], key, f"{where}[{key}]", sending=sending)]
    if kind == "objectList":
        if not isinstance(value, Mapping) or not all(str(k).isdigit() for k in value):
            return [f'{where}: an objectList must be a {{"0": ...}} map']
        return [
            p
            for k, item in value.items()
            for p in check_object(spec["objectName"], item, f"{where}/{k}", sending=sending)
        ]
    if kind == "map":
        if not isinstance(value, Mapping):
            return [f"{where}: a map must be a JSON object"]
        return [
            p
            for k, v in value.items()
            for p in check_value(spec["keyClass"], k, f"{where}[key]", sending=sending)
            + check_value(spec["valueClass"], v, f"{where}[{k}]", sending=sending)
        ]
    if kind == "object":
        return check_object(spec["objectName"], value, where, sending=sending)
    return [f"{where}: unknown schema kind {kind}"]


# --- read-model checker (what we read) -------------------------------------------------------------------


def _python_kinds(annotation: Any) -> list[Any]:
    """The concrete types behind an annotation, with Optional/Annotated/unions unwrapped."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _python_kinds(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [k for arg in typing.get_args(annotation) if arg is not type(None) for k in _python_kinds(arg)]
    return [annotation]


CONTAINER_KINDS: dict[str, tuple[type, ...]] = {"set": (set, frozenset), "objectList": (list,), "map": (dict,)}


def _compatible_one(spec: Mapping[str, Any], python: Any) -> bool:
    kind = spec["type"]
    origin = typing.get_origin(python) or python
    if kind in SCALAR_KINDS or kind == "enum":
        expected = str if kind == "enum" else SCALAR_KINDS[kind]
        if origin is Literal:
            return all(isinstance(v, expected) for v in typing.get_args(python))
        return origin is expected
    if kind in CONTAINER_KINDS:
        return origin in CONTAINER_KINDS[kind]
    if kind != "object" or not (isinstance(origin, type) and issubclass(origin, BaseModel)):
        return False
    # A tagged model must only know tags the schema declares for that object.
    tag_field = origin.model_fields.get("type_")
    tags = typing.get_args(tag_field.annotation) if tag_field is not None else ()
    return set(tags) <= set(variants(spec["objectName"]))


def _compatible(spec: Mapping[str, Any], annotation: Any) -> bool:
    return all(_compatible_one(spec, python) for python in _python_kinds(annotation))


def check_model(model: type[BaseModel], schema_name: str, tags: list[str] | None = None) -> list[str]:
    """Problems with ``model``'s fields as properties of every listed variant of ``schema_name``."""
    options = variants(schema_name)
    field_sets = [options[tag] for tag in tags] if tags else list(options.values())
    problems = []
    for name, info in model.model_fields.items():
        alias = info.alias or name
        for field_set in field_sets:
            if alias in IMPLICIT:
                continue
            props = properties(field_set)
            if alias not in props:
                problems.append(f"{model.__name__}.{name}: {alias!r} is not a property of {field_set}")
            elif not _compatible(props[alias]["type"], info.annotation):
                problems.append(f"{model.__name__}.{name}: {info.annotation} vs schema {props[alias]['type']}")
    return problems


# --- the contract ----------------------------------------------------------------------------------------

ALIAS = EmailAlias(name="john", domain_id="b", description="old address")
SENT: list[tuple[str, dict[str, Any]]] = [
    (
        "x:Domain",
        DomainCreate(
            name="acme.test", description="d", aliases={"alt.test"}, is_enabled=True, dkim_management=DkimManagement()
        ).to_wire(),
    ),
    (
        "x:Domain",
        DomainUpdate(
            name="a.test",
            description=None,
            aliases=set(),
            is_enabled=False,
            dkim_management=DkimManagement(type_="Manual"),
        ).to_wire(),
    ),
    (
        "x:Account",
        UserCreate(
            name="jdoe",
            domain_id="b",
            description="John",
            password="pw",
            aliases=[ALIAS],
            member_group_ids={"g"},
            quotas={"maxDiskQuota": 1},
        ).to_wire(),
    ),
    (
        "x:Account",
        GroupCreate(
            name="sales", domain_id="b", description="Sales", aliases=[ALIAS], quotas={"maxEmails": 5}
        ).to_wire(),
    ),
]


@pytest.mark.parametrize(("schema_name", "payload"), SENT, ids=[f"{n}-{i}" for i, (n, _) in enumerate(SENT)])
def test_every_create_body_matches_the_schema(schema_name: str, payload: dict[str, Any]) -> None:
    assert check_object(schema_name, payload, schema_name, sending=True) == []


def test_account_update_matches_both_account_variants() -> None:
    patch = AccountUpdate(
        description="x", aliases=[ALIAS], member_group_ids={"g"}, quotas={"maxDiskQuota": 2}
    ).to_wire()
    assert check_object("x:Account", {"@type": "User", **patch}, "update", sending=True) == []
    group_patch = {k: v for k, v in patch.items() if k != "memberGroupIds"}
    assert check_object("x:Account", {"@type": "Group", **group_patch}, "update", sending=True) == []


@contextlib.asynccontextmanager
async def recording_provider(fake: FakeStalwart) -> AsyncIterator[tuple[StalwartMailProvider, list[list[Any]]]]:
    """The mail adapter over ``fake``, and the JMAP method calls it sends (filled in as it runs)."""
    sent: list[list[Any]] = []

    def recording(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            sent.extend(json.loads(request.content)["methodCalls"])
        return fake(request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(recording)) as http:
        yield StalwartMailProvider(StalwartClient(http, BASE, api_key=API_KEY)), sent


async def test_bodies_the_adapter_actually_sends_match_the_schema() -> None:
    fake = FakeStalwart()
    async with recording_provider(fake) as (provider, sent):
        await provider.ensure_tenant_domain(TENANT, {})
    creates = [body for name, args, _ in sent if name == "x:Domain/set" for body in args["create"].values()]
    assert creates, "the adapter created no domain"
    assert all(check_object("x:Domain", body, "create", sending=True) == [] for body in creates)


async def test_properties_the_adapter_actually_reads_exist_in_every_variant() -> None:
    fake = FakeStalwart()
    async with recording_provider(fake) as (provider, sent):
        first = await provider.ensure_tenant_domain(TENANT, {})
        fake.add_dkim(first.ids["domainId"])
        await provider.ensure_tenant_domain(TENANT, first.ids)
    asked = [(name.removesuffix("/get"), args["properties"]) for name, args, _ in sent if name.endswith("/get")]
    assert {name for name, _ in asked} == {"x:Domain", "x:DkimSignature"}
    missing = [
        (name, prop)
        for name, props in asked
        for field_set in variants(name).values()
        for prop in props
        if prop not in IMPLICIT and prop not in properties(field_set)
    ]
    assert missing == []


def unresolvable_references(calls: list[list[Any]]) -> list[str]:
    """The references in one request that Stalwart would not resolve: ``#ids`` must name an earlier /get or
    /query call (it evaluates no /set result); ``"#<creation id>"`` in a get's ids must name an earlier
    creation; a query filter takes no reference at all (crates/jmap-proto/src/references/)."""
    problems: list[str] = []
    names: dict[str, str] = {}
    creations: set[str] = set()
    for name, args, call_id in calls:
        reference = args.get("#ids")
        if reference is not None and not (
            names.get(reference["resultOf"]) == reference["name"] and reference["name"].endswith(("/get", "/query"))
        ):
            problems.append(f"{name} ({call_id}): #ids refers to {reference}")
        for raw in args.get("ids") or []:
            if raw.startswith("#") and raw[1:] not in creations:
                problems.append(f"{name} ({call_id}): ids name {raw}, created by no earlier call")
        for key, value in (args.get("filter") or {}).items():
            if isinstance(value, str) and value.startswith("#"):
                problems.append(f"{name} ({call_id}): filter {key} is a reference")
        if name.endswith("/set"):
            creations |= set(args.get("create") or {})
        names[call_id] = name
    return problems


async def test_a_new_tenants_requests_create_and_read_back_with_references_stalwart_resolves() -> None:
    fake = FakeStalwart()
    requests: list[list[list[Any]]] = []

    def recording(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            requests.append(json.loads(request.content)["methodCalls"])
        return fake(request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(recording)) as http:
        provider = StalwartMailProvider(StalwartClient(http, BASE, api_key=API_KEY))
        first = await provider.ensure_tenant_domain(TENANT, {})
        fake.add_dkim(first.ids["domainId"])
        await provider.ensure_tenant_domain(TENANT, {})  # no stored id: the create is refused, the holder adopted

    [create, read_back] = requests[0]
    assert (create[0], read_back[0], read_back[1]["ids"]) == ("x:Domain/set", "x:Domain/get", ["#new"])
    assert list(create[1]["create"]) == ["new"]
    assert [problem for calls in requests for problem in unresolvable_references(calls)] == []
    assert len(requests) == 4  # create + read-back, keys and zone; refused create + read-back, the holder


def test_the_reference_checker_flags_what_stalwart_would_refuse() -> None:
    calls = [
        ["x:Domain/set", {"create": {"new": {"name": "a.test"}}}, "s"],
        ["x:Domain/get", {"#ids": {"resultOf": "s", "name": "x:Domain/set", "path": "/created/new/id"}}, "a"],
        ["x:Domain/get", {"ids": ["#other"]}, "b"],
        ["x:DkimSignature/query", {"filter": {"domainId": "#new"}}, "c"],
        ["x:Domain/get", {"ids": ["#new"]}, "d"],
    ]
    assert [problem.split(" ", 2)[1] for problem in unresolvable_references(calls)] == ["(a):", "(b):", "(c):"]


@pytest.mark.parametrize(
    ("model", "schema_name", "tags"),
    [
        (Domain, "x:Domain", None),
        (UserAccount, "x:Account", ["User"]),
        (GroupAccount, "x:Account", ["Group"]),
        (DkimSignature, "x:DkimSignature", None),
        (EmailAlias, "x:EmailAlias", None),
    ],
)
def test_every_property_read_exists_with_a_compatible_type(
    model: type[BaseModel], schema_name: str, tags: list[str] | None
) -> None:
    assert check_model(model, schema_name, tags) == []


@pytest.mark.parametrize(
    ("props", "schema_name", "tags"),
    [
        (DOMAIN_PROPERTIES, "x:Domain", None),
        (DOMAIN_ZONE_PROPERTIES, "x:Domain", None),
        (DKIM_PROPERTIES, "x:DkimSignature", None),
        (tuple(p for p in ACCOUNT_PROPERTIES if p != "memberGroupIds"), "x:Account", None),
        (ACCOUNT_PROPERTIES, "x:Account", ["User"]),
    ],
)
def test_every_property_asked_for_exists(props: tuple[str, ...], schema_name: str, tags: list[str] | None) -> None:
    options = variants(schema_name)
    for field_set in [options[t] for t in tags] if tags else options.values():
        assert [p for p in props if p not in IMPLICIT and p not in properties(field_set)] == []


def test_the_zone_file_is_a_server_set_text_property() -> None:
    assert properties("x:Domain")["dnsZoneFile"]["update"] == "serverSet"


# --- the checker itself must fail on what is wrong -------------------------------------------------------


def test_checker_rejects_an_invented_property() -> None:
    problems = check_object("x:Domain", {"name": "a.test", "nickname": "acme"}, "create", sending=True)
    assert problems == ["create.nickname: not a property of x:Domain"]


def test_checker_rejects_a_server_set_property_in_a_sent_body() -> None:
    problems = check_object("x:Domain", {"name": "a.test", "dnsZoneFile": "x"}, "create", sending=True)
    assert problems == ["create.dnsZoneFile: server-set, must never be sent"]


@pytest.mark.parametrize(
    "payload",
    [{"aliases": ["alt.test"]}, {"isEnabled": "yes"}, {"dkimManagement": {"@type": "Sometimes"}}, {"name": None}],
)
def test_checker_rejects_wrongly_encoded_values(payload: dict[str, Any]) -> None:
    assert check_object("x:Domain", payload, "create", sending=True) != []


def test_checker_rejects_a_bad_enum_key_and_a_missing_variant_tag() -> None:
    assert check_object("x:Account", {"@type": "User", "quotas": {"maxUnicorns": 1}}, "c", sending=True)
    assert check_object("x:Account", {"name": "jdoe"}, "c", sending=True)


def test_model_checker_rejects_an_invented_or_mistyped_field() -> None:
    class Invented(Domain):
        favourite_colour: str = Field(default="", alias="favouriteColour")

    class Mistyped(Domain):
        is_enabled: str = Field(default="", alias="isEnabled")  # type: ignore[assignment]

    class WeeklyDkim(DkimManagement):
        type_: Literal["Automatic", "Weekly"] = Field(default="Automatic", alias="@type")  # type: ignore[assignment]

    class UnknownTag(Domain):
        dkim_management: WeeklyDkim | None = None

    assert check_model(Invented, "x:Domain") == [
        "Invented.favourite_colour: 'favouriteColour' is not a property of x:Domain"
    ]
    assert len(check_model(Mistyped, "x:Domain")) == 1
    assert len(check_model(UnknownTag, "x:Domain")) == 1
