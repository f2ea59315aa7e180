"""The Stalwart JMAP client: session discovery, batched calls with back-references, and each error level."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from tenantry.integrations.stalwart.client import StalwartClient
from tenantry.integrations.stalwart.errors import (
    ObjectRef,
    StalwartAuthError,
    StalwartConnectionError,
    StalwartMethodError,
    StalwartProtocolError,
    StalwartRateLimitError,
    StalwartRequestError,
    StalwartServerError,
    StalwartSetError,
    StalwartTimeoutError,
)
from tenantry.integrations.stalwart.jmap import JmapRequest, ref
from tenantry.integrations.stalwart.models import (
    AccountUpdate,
    DomainCreate,
    DomainUpdate,
    GroupAccount,
    UserAccount,
    UserCreate,
)

BASE = "https://mail.example.test"
API_KEY = "API_c2VjcmV0LWtleS1tYXRlcmlhbA"
MGMT_ACCOUNT = "d"

Calls = list[list[Any]]
Responder = Callable[[Calls], httpx.Response | list[list[Any]]]


def session_json(api_url: str = f"{BASE}/jmap/") -> dict[str, Any]:
    return {
        "capabilities": {"urn:ietf:params:jmap:core": {"maxCallsInRequest": 16}},
        "accounts": {
            MGMT_ACCOUNT: {
                "name": "admin",
                "isPersonal": True,
                "isReadOnly": False,
                "accountCapabilities": {"urn:stalwart:jmap": {}},
            }
        },
        "primaryAccounts": {"urn:stalwart:jmap": MGMT_ACCOUNT},
        "username": "admin",
        "apiUrl": api_url,
        "downloadUrl": f"{BASE}/jmap/download/",
        "uploadUrl": f"{BASE}/jmap/upload/",
        "eventSourceUrl": f"{BASE}/jmap/eventsource/",
        "state": "s1",
    }


class FakeServer:
    """A MockTransport handler: the 307 session discovery, then ``responder`` for every API POST."""

    def __init__(self, responder: Responder | None = None, *, session: dict[str, Any] | None = None) -> None:
        self.responder = responder
        self.session = session or session_json()
        self.requests: list[httpx.Request] = []
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.method == "GET" and request.url.path == "/.well-known/jmap":
            return httpx.Response(307, headers={"Location": "/jmap/session"})
        if request.method == "GET" and request.url.path == "/jmap/session":
            if "authorization" not in request.headers:
                return httpx.Response(200, json={"capabilities": {}})
            return httpx.Response(200, json=self.session)
        assert request.method == "POST"
        assert request.url.path == "/jmap/"
        body = json.loads(request.content)
        self.bodies.append(body)
        assert self.responder is not None
        answer = self.responder(body["methodCalls"])
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, json={"methodResponses": answer, "sessionState": "s1"})

    @property
    def posts(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == "POST"]


async def run(server: FakeServer, action: Callable[[StalwartClient], Any], **auth: Any) -> Any:
    credentials = auth or {"api_key": API_KEY}
    async with httpx.AsyncClient(transport=httpx.MockTransport(server)) as http:
        return await action(StalwartClient(http, BASE, **credentials))


def domain_json(**extra: Any) -> dict[str, Any]:
    return {
        "id": "b",
        "name": "acme.test",
        "aliases": {"acme-mail.test": True, "old.test": False},
        "isEnabled": True,
        "description": "Tenantry tenant acme",
        "dkimManagement": {"@type": "Automatic", "selectorTemplate": "v{version}"},
        "createdAt": "x",
        **extra,
    }


def set_response(method: str, call_id: str, **result: Any) -> list[Any]:
    return [method, {"accountId": MGMT_ACCOUNT, **result}, call_id]


# --- session discovery ---------------------------------------------------------------------------------


async def test_session_discovery_follows_the_307_with_the_api_key_and_is_cached() -> None:
    server = FakeServer(lambda calls: [[calls[0][0], {"ids": []}, calls[0][2]]])

    async def twice(client: StalwartClient) -> Any:
        await client.query_domains()
        return await client.query_domains()

    assert await run(server, twice) == []
    gets = [r for r in server.requests if r.method == "GET"]
    assert [r.url.path for r in gets] == ["/.well-known/jmap", "/jmap/session"]
    assert all(r.headers["authorization"] == f"Bearer {API_KEY}" for r in server.requests)
    assert len(server.posts) == 2


async def test_requests_use_the_management_account_and_both_capabilities() -> None:
    server = FakeServer(lambda calls: [[calls[0][0], {"ids": ["b"]}, calls[0][2]]])
    assert await run(server, lambda c: c.query_domains(name="acme.test")) == ["b"]
    body = server.bodies[0]
    assert body["using"] == ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"]
    assert body["methodCalls"] == [
        ["x:Domain/query", {"filter": {"name": "acme.test"}, "accountId": MGMT_ACCOUNT}, "c0"]
    ]
    assert server.posts[0].headers["content-type"] == "application/json"


async def test_basic_credentials_are_sent_as_basic_auth() -> None:
    server = FakeServer(lambda calls: [[calls[0][0], {"ids": []}, calls[0][2]]])
    await run(server, lambda c: c.query_domains(), username="admin", password="pw-123")
    expected = "Basic " + base64.b64encode(b"admin:pw-123").decode()
    assert {r.headers["authorization"] for r in server.requests} == {expected}


def test_client_refuses_to_start_without_credentials() -> None:
    with pytest.raises(ValueError, match="api_key or a username"):
        StalwartClient(httpx.AsyncClient(), BASE)


async def test_session_without_api_url_is_a_protocol_error() -> None:
    server = FakeServer(session={"capabilities": {}})
    with pytest.raises(StalwartProtocolError, match="no apiUrl"):
        await run(server, lambda c: c.session())


async def test_relative_api_url_resolves_against_the_session_url() -> None:
    server = FakeServer(lambda calls: [[calls[0][0], {"ids": []}, calls[0][2]]], session=session_json(api_url="/jmap/"))
    await run(server, lambda c: c.query_domains())
    assert str(server.posts[0].url) == f"{BASE}/jmap/"


# --- request building ------------------------------------------------------------------------------------


def test_request_builder_numbers_calls_and_encodes_back_references() -> None:
    request = JmapRequest()
    query = request.call("x:Domain/query", {"filter": {"name": "a.test"}})
    get = request.call("x:Domain/get", {"ids": ref(query, "/ids"), "properties": ["id"]})
    assert (query.id, get.id) == ("c0", "c1")
    assert request.to_wire("d") == {
        "using": ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"],
        "methodCalls": [
            ["x:Domain/query", {"filter": {"name": "a.test"}, "accountId": "d"}, "c0"],
            [
                "x:Domain/get",
                {
                    "#ids": {"resultOf": "c0", "name": "x:Domain/query", "path": "/ids"},
                    "properties": ["id"],
                    "accountId": "d",
                },
                "c1",
            ],
        ],
    }


def test_request_without_management_account_omits_account_id() -> None:
    request = JmapRequest()
    request.call("x:Domain/query")
    assert request.to_wire(None)["methodCalls"] == [["x:Domain/query", {}, "c0"]]


async def test_find_domain_queries_and_gets_in_one_request_by_lowercased_name() -> None:
    def responder(calls: Calls) -> list[list[Any]]:
        return [
            ["x:Domain/query", {"ids": ["b"]}, calls[0][2]],
            ["x:Domain/get", {"list": [domain_json()], "notFound": []}, calls[1][2]],
        ]

    server = FakeServer(responder)
    domain = await run(server, lambda c: c.find_domain(" Acme.TEST "))
    assert len(server.posts) == 1
    calls = server.bodies[0]["methodCalls"]
    assert calls[0][1]["filter"] == {"name": "acme.test"}
    assert calls[1][1]["#ids"] == {"resultOf": calls[0][2], "name": "x:Domain/query", "path": "/ids"}
    assert "dnsZoneFile" not in calls[1][1]["properties"]
    assert domain is not None
    assert (domain.id, domain.name, domain.aliases) == ("b", "acme.test", frozenset({"acme-mail.test"}))
    assert domain.dkim_management is not None
    assert domain.dkim_management.type_ == "Automatic"


async def test_find_domain_returns_none_when_nothing_matches() -> None:
    server = FakeServer(
        lambda calls: [
            ["x:Domain/query", {"ids": []}, calls[0][2]],
            ["x:Domain/get", {"list": [], "notFound": []}, calls[1][2]],
        ]
    )
    assert await run(server, lambda c: c.find_domain("none.test")) is None


async def test_get_domains_can_ask_for_the_zone_file() -> None:
    server = FakeServer(
        lambda calls: [["x:Domain/get", {"list": [domain_json(dnsZoneFile="zone")], "notFound": ["zz"]}, calls[0][2]]]
    )
    domains = await run(server, lambda c: c.get_domains(["b", "zz"], ["id", "name", "dnsZoneFile"]))
    assert server.bodies[0]["methodCalls"][0][1]["ids"] == ["b", "zz"]
    assert [d.dns_zone_file for d in domains] == ["zone"]


async def test_query_dkim_filters_by_domain_and_parses_signatures() -> None:
    signature = {
        "id": "k1",
        "@type": "Dkim1Ed25519Sha256",
        "domainId": "b",
        "selector": "v1-ed25519",
        "stage": "active",
        "publicKey": "MCowBQ",
        "privateKey": {"@type": "Text", "secret": "****"},
    }
    server = FakeServer(
        lambda calls: [
            ["x:DkimSignature/query", {"ids": ["k1"]}, calls[0][2]],
            ["x:DkimSignature/get", {"list": [signature]}, calls[1][2]],
        ]
    )
    keys = await run(server, lambda c: c.query_dkim("b"))
    calls = server.bodies[0]["methodCalls"]
    assert calls[0][1]["filter"] == {"domainId": "b"}
    assert "privateKey" not in calls[1][1]["properties"]
    assert [(k.selector, k.type_, k.stage, k.public_key) for k in keys] == [
        ("v1-ed25519", "Dkim1Ed25519Sha256", "active", "MCowBQ")
    ]


KEY_JSON = {
    "id": "k1",
    "@type": "Dkim1Ed25519Sha256",
    "domainId": "b",
    "selector": "v1-ed25519",
    "stage": "active",
    "publicKey": "MCowBQ",
}


async def test_domain_with_dkim_reads_the_keys_then_the_domain_in_one_request() -> None:
    def responder(calls: Calls) -> list[list[Any]]:
        return [
            ["x:DkimSignature/query", {"ids": ["k1"]}, calls[0][2]],
            ["x:DkimSignature/get", {"list": [KEY_JSON], "notFound": []}, calls[1][2]],
            [
                "x:Domain/get",
                {
                    "list": [
                        {
                            "id": "b",
                            "name": "acme.test",
                            "description": "ours",
                            "dkimManagement": {"@type": "Manual"},
                            "dnsZoneFile": "zone",
                        }
                    ],
                    "notFound": [],
                },
                calls[2][2],
            ],
        ]

    server = FakeServer(responder)
    state = await run(server, lambda c: c.get_domain_with_dkim("b"))
    assert len(server.posts) == 1
    (query, get, domain) = server.bodies[0]["methodCalls"]
    assert [query[0], get[0], domain[0]] == ["x:DkimSignature/query", "x:DkimSignature/get", "x:Domain/get"]
    assert query[1]["filter"] == {"domainId": "b"}
    assert get[1]["#ids"] == {"resultOf": query[2], "name": "x:DkimSignature/query", "path": "/ids"}
    assert "privateKey" not in get[1]["properties"]
    assert domain[1]["ids"] == ["b"]
    assert domain[1]["properties"] == [
        "id",
        "name",
        "aliases",
        "isEnabled",
        "description",
        "dkimManagement",
        "dnsZoneFile",
    ]
    assert state.domain is not None
    assert (state.domain.id, state.domain.name, state.domain.dns_zone_file) == ("b", "acme.test", "zone")
    assert state.domain.description == "ours"
    assert state.domain.dkim_management is not None
    assert state.domain.dkim_management.type_ == "Manual"
    assert [(k.id, k.selector, k.stage) for k in state.dkim] == [("k1", "v1-ed25519", "active")]


async def test_domain_with_dkim_reports_a_missing_domain_as_none() -> None:
    server = FakeServer(
        lambda calls: [
            ["x:DkimSignature/query", {"ids": []}, calls[0][2]],
            ["x:DkimSignature/get", {"list": [], "notFound": []}, calls[1][2]],
            ["x:Domain/get", {"list": [], "notFound": ["b"]}, calls[2][2]],
        ]
    )
    state = await run(server, lambda c: c.get_domain_with_dkim("b"))
    assert (state.domain, state.dkim) == (None, ())


async def test_domain_with_dkim_raises_the_domains_error_before_the_keys_errors() -> None:
    server = FakeServer(
        lambda calls: [
            ["error", {"type": "forbidden"}, calls[0][2]],
            ["error", {"type": "invalidResultReference"}, calls[1][2]],
            ["error", {"type": "accountNotFound"}, calls[2][2]],
        ]
    )
    with pytest.raises(StalwartMethodError) as caught:
        await run(server, lambda c: c.get_domain_with_dkim("b"))
    assert (caught.value.method, caught.value.type) == ("x:Domain/get", "accountNotFound")


async def test_domain_with_dkim_raises_the_key_query_error_rather_than_the_reference_it_broke() -> None:
    server = FakeServer(
        lambda calls: [
            ["error", {"type": "forbidden"}, calls[0][2]],
            ["error", {"type": "invalidResultReference"}, calls[1][2]],
            ["x:Domain/get", {"list": [], "notFound": ["b"]}, calls[2][2]],
        ]
    )
    with pytest.raises(StalwartMethodError) as caught:
        await run(server, lambda c: c.get_domain_with_dkim("b"))
    assert (caught.value.method, caught.value.type) == ("x:DkimSignature/query", "forbidden")


async def test_deferred_method_errors_are_raised_only_when_their_call_is_read() -> None:
    request = JmapRequest()
    failing = request.call("x:Domain/query", {"filter": {"name": "a.test"}})
    fine = request.call("x:Account/query", {"filter": {}})
    server = FakeServer(
        lambda calls: [["error", {"type": "forbidden"}, calls[0][2]], ["x:Account/query", {"ids": ["u"]}, calls[1][2]]]
    )
    response = await run(server, lambda c: c.execute(request, raise_first_error=False))
    assert response[fine]["ids"] == ["u"]
    with pytest.raises(StalwartMethodError) as caught:
        response[failing]
    assert (caught.value.method, caught.value.type) == ("x:Domain/query", "forbidden")


# --- set calls -------------------------------------------------------------------------------------------


async def test_create_domain_sends_only_the_given_fields_and_returns_the_new_id() -> None:
    server = FakeServer(
        lambda calls: [set_response("x:Domain/set", calls[0][2], created={"new": {"id": "c", "createdAt": "t"}})]
    )
    new_id = await run(
        server, lambda c: c.create_domain(DomainCreate(name="acme.test", description="Tenantry tenant acme"))
    )
    assert new_id == "c"
    assert server.bodies[0]["methodCalls"][0][1]["create"] == {
        "new": {"name": "acme.test", "description": "Tenantry tenant acme"}
    }


async def test_create_and_get_domain_reads_the_creation_back_in_the_same_request() -> None:
    def responder(calls: Calls) -> list[list[Any]]:
        (set_name, _, set_id), (get_name, get_args, get_id) = calls
        created = set_response(set_name, set_id, created={"new": {"id": "b"}})
        assert get_args["ids"] == ["#new"]  # a creation id: Stalwart resolves no #ids into a /set result
        return [created, [get_name, {"accountId": MGMT_ACCOUNT, "list": [domain_json()], "notFound": []}, get_id]]

    server = FakeServer(responder)
    domain_id, domain = await run(server, lambda c: c.create_and_get_domain(DomainCreate(name="acme.test")))

    assert (domain_id, domain.id if domain else None) == ("b", "b")
    [(set_name, set_args, _), (get_name, get_args, _)] = server.bodies[0]["methodCalls"]
    assert (set_name, set_args["create"]) == ("x:Domain/set", {"new": {"name": "acme.test"}})
    assert (get_name, get_args["properties"]) == (
        "x:Domain/get",
        ["id", "name", "aliases", "isEnabled", "description", "dkimManagement"],
    )
    assert len(server.bodies) == 1


async def test_create_and_get_domain_raises_the_creates_refusal_not_the_failed_read_back() -> None:
    error = {"type": "primaryKeyViolation", "properties": ["name"], "objectId": {"object": "Domain", "id": "b"}}

    def responder(calls: Calls) -> list[list[Any]]:
        failed_get = ["error", {"type": "invalidResultReference", "description": "Id reference"}, calls[1][2]]
        return [set_response("x:Domain/set", calls[0][2], notCreated={"new": error}), failed_get]

    with pytest.raises(StalwartSetError) as caught:
        await run(FakeServer(responder), lambda c: c.create_and_get_domain(DomainCreate(name="acme.test")))
    assert (caught.value.type, caught.value.object_id) == ("primaryKeyViolation", ObjectRef("Domain", "b"))


async def test_update_and_destroy_domain_send_patch_and_id_list() -> None:
    def responder(calls: Calls) -> list[list[Any]]:
        args = calls[0][1]
        result = {"updated": {"b": None}} if "update" in args else {"destroyed": ["b"]}
        return [set_response("x:Domain/set", calls[0][2], **result)]

    server = FakeServer(responder)

    async def both(client: StalwartClient) -> None:
        await client.update_domain("b", DomainUpdate(description="new", aliases={"x.test"}))
        await client.destroy_domain("b")

    await run(server, both)
    assert server.bodies[0]["methodCalls"][0][1]["update"] == {"b": {"description": "new", "aliases": {"x.test": True}}}
    assert server.bodies[1]["methodCalls"][0][1]["destroy"] == ["b"]


async def test_primary_key_violation_carries_the_existing_object() -> None:
    error = {"type": "primaryKeyViolation", "properties": ["name"], "objectId": {"object": "Domain", "id": "b"}}
    server = FakeServer(lambda calls: [set_response("x:Domain/set", calls[0][2], notCreated={"new": error})])
    with pytest.raises(StalwartSetError) as caught:
        await run(server, lambda c: c.create_domain(DomainCreate(name="acme.test")))
    err = caught.value
    assert (err.type, err.operation, err.object_type) == ("primaryKeyViolation", "create", "Domain")
    assert err.is_primary_key_violation
    assert err.object_id == ObjectRef("Domain", "b")
    assert err.properties == ("name",)


async def test_object_is_linked_lists_the_linking_objects() -> None:
    error = {
        "type": "objectIsLinked",
        "linkedObjects": [{"object": "Account", "id": "u1"}, {"object": "Account", "id": "u2"}],
    }
    server = FakeServer(lambda calls: [set_response("x:Domain/set", calls[0][2], notDestroyed={"b": error})])
    with pytest.raises(StalwartSetError) as caught:
        await run(server, lambda c: c.destroy_domain("b"))
    assert caught.value.is_object_linked
    assert caught.value.linked_objects == (ObjectRef("Account", "u1"), ObjectRef("Account", "u2"))


async def test_validation_failed_names_every_invalid_property() -> None:
    error = {
        "type": "validationFailed",
        "description": "Invalid object",
        "validationErrors": [{"type": "Required", "property": "domainId"}],
    }
    server = FakeServer(lambda calls: [set_response("x:Account/set", calls[0][2], notCreated={"new": error})])
    with pytest.raises(StalwartSetError) as caught:
        await run(server, lambda c: c.create_account(UserCreate(name="jdoe", domain_id="")))
    assert caught.value.is_validation_error
    assert caught.value.invalid_properties == ("domainId",)


async def test_weak_password_error_never_repeats_the_password() -> None:
    error = {"type": "invalidProperties", "properties": ["credentials/0/secret"], "description": "Password is too weak"}
    server = FakeServer(lambda calls: [set_response("x:Account/set", calls[0][2], notCreated={"new": error})])
    with pytest.raises(StalwartSetError) as caught:
        await run(server, lambda c: c.create_account(UserCreate(name="jdoe", domain_id="b", password="hunter2")))
    sent = server.bodies[0]["methodCalls"][0][1]["create"]["new"]
    assert sent["credentials"] == {"0": {"@type": "Password", "secret": "hunter2"}}
    assert "hunter2" not in str(caught.value)
    assert caught.value.invalid_properties == ("credentials/0/secret",)


async def test_find_account_filters_by_local_part_and_domain_and_parses_the_variant() -> None:
    user = {
        "@type": "User",
        "id": "u1",
        "name": "jdoe",
        "domainId": "b",
        "emailAddress": "jdoe@acme.test",
        "memberGroupIds": {"g1": True},
        "aliases": {"0": {"name": "john", "domainId": "b"}},
        "credentials": {"0": {"@type": "Password", "secret": "****"}},
    }
    group = {"@type": "Group", "id": "g1", "name": "sales", "domainId": "b"}
    server = FakeServer(
        lambda calls: [
            ["x:Account/query", {"ids": ["u1"]}, calls[0][2]],
            ["x:Account/get", {"list": [user]}, calls[1][2]],
        ]
    )
    found = await run(server, lambda c: c.find_account("JDoe", "b"))
    assert server.bodies[0]["methodCalls"][0][1]["filter"] == {"name": "jdoe", "domainId": "b"}
    assert isinstance(found, UserAccount)
    assert found.member_group_ids == frozenset({"g1"})
    assert [a.name for a in found.aliases] == ["john"]

    server = FakeServer(lambda calls: [["x:Account/get", {"list": [group]}, calls[0][2]]])
    accounts = await run(server, lambda c: c.get_accounts(["g1"]))
    assert [type(a) for a in accounts] == [GroupAccount]


async def test_update_account_sends_list_and_set_encodings() -> None:
    server = FakeServer(lambda calls: [set_response("x:Account/set", calls[0][2], updated={"u1": None})])
    await run(
        server,
        lambda c: c.update_account("u1", AccountUpdate(member_group_ids={"g2", "g1"}, quotas={"maxDiskQuota": 1024})),
    )
    assert server.bodies[0]["methodCalls"][0][1]["update"] == {
        "u1": {"memberGroupIds": {"g1": True, "g2": True}, "quotas": {"maxDiskQuota": 1024}}
    }


# --- method-level errors ---------------------------------------------------------------------------------


async def test_method_error_raises_with_type_description_and_method() -> None:
    server = FakeServer(
        lambda calls: [["error", {"type": "forbidden", "description": "You are not authorized"}, calls[0][2]]]
    )
    with pytest.raises(StalwartMethodError) as caught:
        await run(server, lambda c: c.query_domains())
    assert (caught.value.type, caught.value.method) == ("forbidden", "x:Domain/query")
    assert caught.value.description == "You are not authorized"


async def test_first_error_of_a_batch_is_the_one_raised() -> None:
    server = FakeServer(
        lambda calls: [
            ["error", {"type": "unsupportedFilter", "description": "Filter on property x"}, calls[0][2]],
            ["error", {"type": "invalidResultReference"}, calls[1][2]],
        ]
    )
    with pytest.raises(StalwartMethodError) as caught:
        await run(server, lambda c: c.find_domain("a.test"))
    assert caught.value.type == "unsupportedFilter"


async def test_response_without_method_responses_is_a_protocol_error() -> None:
    server = FakeServer(lambda calls: httpx.Response(200, json={"unexpected": True}))
    with pytest.raises(StalwartProtocolError):
        await run(server, lambda c: c.query_domains())


async def test_non_json_answer_is_a_protocol_error() -> None:
    server = FakeServer(lambda calls: httpx.Response(200, text="<html>proxy</html>"))
    with pytest.raises(StalwartProtocolError, match="not JSON"):
        await run(server, lambda c: c.query_domains())


# --- request-level errors --------------------------------------------------------------------------------


def problem(
    status: int, title: str, detail: str, type_: str = "about:blank", headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(
        status,
        json={"type": type_, "status": status, "title": title, "detail": detail},
        headers={"content-type": "application/problem+json", **(headers or {})},
    )


async def test_401_is_an_auth_error_without_the_api_key_in_the_message() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return problem(401, "Unauthorized", "You have to authenticate first.")

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        with pytest.raises(StalwartAuthError) as caught:
            await StalwartClient(http, BASE, api_key=API_KEY).session()
    assert (caught.value.status, caught.value.detail) == (401, "You have to authenticate first.")
    assert API_KEY not in str(caught.value)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (403, StalwartAuthError),
        (429, StalwartRateLimitError),
        (500, StalwartServerError),
        (503, StalwartServerError),
        (400, StalwartRequestError),
    ],
)
async def test_http_status_maps_to_its_error_class(status: int, expected: type[Exception]) -> None:
    server = FakeServer(
        lambda calls: problem(status, "Some title", "Some detail", type_="urn:ietf:params:jmap:error:notRequest")
    )
    with pytest.raises(StalwartRequestError) as caught:
        await run(server, lambda c: c.query_domains())
    assert type(caught.value) is expected
    assert (caught.value.status, caught.value.title) == (status, "Some title")


async def test_429_retry_after_seconds_is_parsed() -> None:
    server = FakeServer(lambda calls: problem(429, "Too Many Requests", "slow down", headers={"Retry-After": "7"}))
    with pytest.raises(StalwartRateLimitError) as caught:
        await run(server, lambda c: c.query_domains())
    assert caught.value.retry_after == 7.0


async def test_429_retry_after_http_date_is_parsed_as_seconds_from_now() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    server = FakeServer(lambda calls: problem(429, "Too Many Requests", "", headers={"Retry-After": when}))
    with pytest.raises(StalwartRateLimitError) as caught:
        await run(server, lambda c: c.query_domains())
    assert caught.value.retry_after is not None
    assert 100 < caught.value.retry_after <= 120


async def test_connection_failure_and_timeout_have_their_own_errors() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        with pytest.raises(StalwartConnectionError):
            await StalwartClient(http, BASE, api_key=API_KEY).session()
    async with httpx.AsyncClient(transport=httpx.MockTransport(hang)) as http:
        with pytest.raises(StalwartTimeoutError):
            await StalwartClient(http, BASE, api_key=API_KEY).session()
