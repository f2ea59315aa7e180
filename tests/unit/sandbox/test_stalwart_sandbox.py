"""Behaviour of the Stalwart sandbox's JMAP management API, driven in-process over HTTP."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tenantry.sandbox.stalwart import StalwartSandbox
from tenantry.sandbox.stalwart_dns import zone_file
from tests.support.clock import ManualClock

API_KEY = "API_c2FuZGJveC1rZXk"
USING = ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sandbox(clock: ManualClock) -> StalwartSandbox:
    return StalwartSandbox(
        api_keys=[API_KEY],
        basic_users={"Admin2": "s3cret-pass"},
        dkim_delay=30,
        clock=clock,
        fast_dkim=True,
        public_url="https://mail.example.test",
    )


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
    responses: list[list[Any]] = response.json()["methodResponses"]
    return responses


async def _one(client: httpx.AsyncClient, name: str, args: dict[str, Any]) -> dict[str, Any]:
    [[answered, result, call_id]] = await _jmap(client, [name, args, "c"])
    assert (answered, call_id) == (name, "c"), result
    out: dict[str, Any] = result
    return out


# -- session and auth ------------------------------------------------------------------------------------
async def test_well_known_redirects_to_the_session_which_lists_the_stalwart_account(client: httpx.AsyncClient) -> None:
    redirect = await client.get("/.well-known/jmap")
    assert redirect.status_code == 307
    assert redirect.headers["location"] == "/jmap/session"

    session = (await client.get("/jmap/session")).json()
    account_id = session["primaryAccounts"]["urn:stalwart:jmap"]
    assert session["accounts"][account_id]["accountCapabilities"] == {"urn:stalwart:jmap": {}}
    assert "urn:stalwart:jmap" not in session["capabilities"]
    assert session["capabilities"]["urn:ietf:params:jmap:core"]["maxCallsInRequest"] == 16
    assert session["capabilities"]["urn:ietf:params:jmap:core"]["maxObjectsInSet"] == 500
    assert session["apiUrl"] == "https://mail.example.test/jmap/"
    assert session["username"] == "admin"
    assert {"downloadUrl", "uploadUrl", "eventSourceUrl", "state"} <= session.keys()


async def test_session_without_credentials_has_capabilities_only(sandbox: StalwartSandbox) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(sandbox.app), base_url="http://s.test") as c:
        body = (await c.get("/jmap/session")).json()
    assert list(body) == ["capabilities"]


async def test_basic_auth_username_is_case_insensitive_and_becomes_the_session_user(sandbox: StalwartSandbox) -> None:
    basic = base64.b64encode(b"ADMIN2:s3cret-pass").decode()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(sandbox.app),
        base_url="http://s.test",
        headers={"Authorization": f"Basic {basic}"},
    ) as c:
        session = (await c.get("/jmap/session")).json()
        answer = await c.post("/jmap/", json={"using": USING, "methodCalls": [["x:Domain/get", {}, "a"]]})
    assert session["username"] == "admin2"
    assert answer.json()["methodResponses"][0][1]["accountId"] == session["primaryAccounts"]["urn:stalwart:jmap"]


@pytest.mark.parametrize("header", [None, "Bearer wrong-key", "Basic " + base64.b64encode(b"admin2:nope").decode()])
async def test_api_without_valid_credentials_answers_401_problem(sandbox: StalwartSandbox, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(sandbox.app), base_url="http://s.test") as c:
        response = await c.post("/jmap/", json={"using": USING, "methodCalls": []}, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "about:blank",
        "status": 401,
        "title": "Unauthorized",
        "detail": "You have to authenticate first.",
    }


# -- request-level errors ----------------------------------------------------------------------------------
async def test_non_json_content_type_is_refused_as_not_json(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/jmap/", content=b'{"using":[],"methodCalls":[]}', headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:ietf:params:jmap:error:notJSON"


@pytest.mark.parametrize(
    "payload",
    [
        {"methodCalls": []},
        {"using": USING, "methodCalls": [["x:Domain/get", {}]]},
        {"using": ["urn:example:unknown"], "methodCalls": []},
    ],
)
async def test_malformed_request_or_unknown_capability_is_not_request(
    client: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    response = await client.post("/jmap/", json=payload)
    assert response.status_code == 400
    assert response.json()["type"] == "urn:ietf:params:jmap:error:notRequest"


async def test_more_than_sixteen_calls_hit_the_limit(client: httpx.AsyncClient) -> None:
    calls = [["x:Domain/get", {}, str(i)] for i in range(17)]
    response = await client.post("/jmap/", json={"using": USING, "methodCalls": calls})
    assert response.status_code == 400
    assert response.json()["type"] == "urn:ietf:params:jmap:error:limit"
    assert response.json()["limit"] == "maxCallsInRequest"


async def test_injected_fault_is_a_problem_json_with_retry_after(
    sandbox: StalwartSandbox, client: httpx.AsyncClient
) -> None:
    sandbox.fail_requests(429, retry_after=3, times=1)
    limited = await client.post("/jmap/", json={"using": USING, "methodCalls": []})
    after = await client.post("/jmap/", json={"using": USING, "methodCalls": []})
    assert limited.status_code == 429
    assert limited.headers["content-type"] == "application/problem+json"
    assert limited.headers["retry-after"] == "3"
    assert limited.json()["status"] == 429
    assert after.status_code == 200


# -- method-level behaviour ----------------------------------------------------------------------------------
async def test_unknown_method_and_foreign_account_are_method_errors(client: httpx.AsyncClient) -> None:
    responses = await _jmap(
        client,
        ["x:Foo/bar", {}, "a"],
        ["x:Domain/changes", {}, "b"],
        ["x:Domain/get", {"accountId": "zzz"}, "c"],
        ["x:Domain/get", {}, "d"],
    )
    assert responses[0] == ["error", {"type": "unknownMethod", "description": "x:Foo/bar"}, "a"]
    assert responses[1][:2] == ["error", {"type": "unknownMethod", "description": "x:Domain/changes"}]
    assert responses[2][0] == "error"
    assert responses[2][1]["type"] == "forbidden"
    assert responses[3][0] == "x:Domain/get"


async def test_filter_on_unindexed_property_or_or_operator_is_unsupported(client: httpx.AsyncClient) -> None:
    responses = await _jmap(
        client,
        ["x:Account/query", {"filter": {"emailAddress": "a@example.com"}}, "a"],
        ["x:Domain/query", {"filter": {"operator": "OR", "conditions": [{"name": "a.test"}]}}, "b"],
    )
    assert [r[1]["type"] for r in responses] == ["unsupportedFilter", "unsupportedFilter"]
    assert "emailAddress" in responses[0][1]["description"]


async def test_query_and_get_with_a_result_reference_in_one_request(
    sandbox: StalwartSandbox, client: httpx.AsyncClient
) -> None:
    wanted = sandbox.add_domain("example.com")
    sandbox.add_domain("other.org")
    query, get = await _jmap(
        client,
        ["x:Domain/query", {"filter": {"name": "example.com"}}, "q"],
        [
            "x:Domain/get",
            {"#ids": {"resultOf": "q", "name": "x:Domain/query", "path": "/ids"}, "properties": ["id", "name"]},
            "g",
        ],
    )
    assert query[1]["ids"] == [wanted]
    assert get[1]["list"] == [{"id": wanted, "name": "example.com"}]


async def test_creation_reference_links_a_user_to_a_domain_and_group_created_earlier(client: httpx.AsyncClient) -> None:
    domains, accounts, check = await _jmap(
        client,
        ["x:Domain/set", {"create": {"dom": {"name": " Example.ORG "}}}, "0"],
        [
            "x:Account/set",
            {
                "create": {
                    "grp": {"@type": "Group", "name": "sales", "domainId": "#dom"},
                    "usr": {
                        "@type": "User",
                        "name": " John Doe",
                        "domainId": "#dom",
                        "memberGroupIds": {"#grp": True},
                        "credentials": {"0": {"@type": "Password", "secret": "correct horse battery"}},
                    },
                }
            },
            "1",
        ],
        [
            "x:Account/get",
            {"ids": ["#usr"], "properties": ["emailAddress", "domainId", "memberGroupIds", "credentials"]},
            "2",
        ],
    )
    domain_id = domains[1]["created"]["dom"]["id"]
    group_id = accounts[1]["created"]["grp"]["id"]
    [user] = check[1]["list"]
    assert user["emailAddress"] == "johndoe@example.org"
    assert user["domainId"] == domain_id
    assert user["memberGroupIds"] == {group_id: True}
    assert user["credentials"]["0"]["secret"] == "****"


async def test_duplicate_domain_is_a_primary_key_violation_naming_the_existing_domain(
    sandbox: StalwartSandbox, client: httpx.AsyncClient
) -> None:
    existing = sandbox.add_domain("example.com", aliases={"example.net": True})
    creates = {
        "a": {"name": "EXAMPLE.com"},
        "b": {"name": "example.net"},  # another domain's alias: upstream still says "name"
        "c": {"name": "new.test", "aliases": {"example.com": True}},
    }
    result = await _one(client, "x:Domain/set", {"create": creates})
    assert "created" not in result
    clash = {"type": "primaryKeyViolation", "objectId": {"object": "Domain", "id": existing}}
    assert result["notCreated"] == {
        "a": {**clash, "properties": ["name"]},
        "b": {**clash, "properties": ["name"]},
        "c": {**clash, "properties": ["aliases"]},
    }


REFUSED_DOMAINS = [
    "intranet",  # no dot
    "com",
    "mail.notarealtld",  # not on the public-suffix list
    "acme.example",  # reserved by RFC 2606, but neither listed nor one of upstream's private TLDs
    "acme.invalid",
    "x.za",  # za itself is not a listed suffix, only co.za and its siblings
    "example.com.",  # upstream refuses a trailing dot
    ".example.com",
    "a..example.com",
]


async def test_domain_upstream_refuses_is_an_invalid_patch(client: httpx.AsyncClient) -> None:
    creates = {str(i): {"name": name} for i, name in enumerate(REFUSED_DOMAINS)}
    result = await _one(client, "x:Domain/set", {"create": creates})
    assert "created" not in result
    assert {i: (e["type"], e["description"]) for i, e in result["notCreated"].items()} == dict.fromkeys(
        creates, ("invalidPatch", "Invalid domain name")
    )


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("Example.COM", "example.com"),
        (" mail . acme . test ", "mail.acme.test"),
        ("Mail.Bücher.de", "mail.xn--bcher-kva.de"),
        ("co.uk", "co.uk"),  # a public suffix with a dot is accepted since 0.16.15
        ("alice.github.io", "alice.github.io"),
        ("x.localhost", "x.localhost"),
        ("host.lan", "host.lan"),  # one of the six private TLDs added in 0.16.8
        ("box.localdomain", "box.localdomain"),
        ("under_score.example.com", "under_score.example.com"),
    ],
)
async def test_domain_upstream_accepts_is_stored_normalised(client: httpx.AsyncClient, name: str, stored: str) -> None:
    result = await _one(client, "x:Domain/set", {"create": {"a": {"name": name}}})
    domain_id = result["created"]["a"]["id"]
    got = await _one(client, "x:Domain/get", {"ids": [domain_id], "properties": ["name"]})
    assert got["list"][0]["name"] == stored


async def test_domain_alias_upstream_refuses_is_an_invalid_patch(client: httpx.AsyncClient) -> None:
    result = await _one(
        client, "x:Domain/set", {"create": {"a": {"name": "acme.test", "aliases": {"acme.example": True}}}}
    )
    assert result["notCreated"]["a"]["type"] == "invalidPatch"
    assert result["notCreated"]["a"]["description"] == "Invalid domain name"


async def test_accounts_are_unique_by_name_and_domain(sandbox: StalwartSandbox, client: httpx.AsyncClient) -> None:
    first, second = sandbox.add_domain("one.test"), sandbox.add_domain("two.test")
    made = await _one(
        client,
        "x:Account/set",
        {
            "create": {
                "a": {"@type": "Group", "name": "team", "domainId": first},
                "b": {"@type": "User", "name": "team", "domainId": second},
            }
        },
    )
    clash = await _one(client, "x:Account/set", {"create": {"c": {"@type": "User", "name": "TEAM", "domainId": first}}})
    assert set(made["created"]) == {"a", "b"}
    assert clash["notCreated"]["c"]["type"] == "primaryKeyViolation"
    assert clash["notCreated"]["c"]["properties"] == ["email"]
    assert clash["notCreated"]["c"]["objectId"] == {"object": "Account", "id": made["created"]["a"]["id"]}


async def test_account_without_domain_or_with_weak_password_is_refused(
    sandbox: StalwartSandbox, client: httpx.AsyncClient
) -> None:
    domain = sandbox.add_domain("example.com")
    result = await _one(
        client,
        "x:Account/set",
        {
            "create": {
                "nodomain": {"@type": "User", "name": "x"},
                "weak": {
                    "@type": "User",
                    "name": "y",
                    "domainId": domain,
                    "credentials": {"0": {"@type": "Password", "secret": "abc"}},
                },
            }
        },
    )
    assert result["notCreated"]["nodomain"]["type"] == "validationFailed"
    assert result["notCreated"]["nodomain"]["validationErrors"] == [{"type": "Required", "property": "domainId"}]
    assert result["notCreated"]["weak"]["type"] == "invalidProperties"
    assert result["notCreated"]["weak"]["properties"] == ["secret"]


async def test_destroying_a_domain_still_used_by_accounts_is_object_is_linked(
    sandbox: StalwartSandbox, client: httpx.AsyncClient
) -> None:
    domain = sandbox.add_domain("example.com")
    made = await _one(client, "x:Account/set", {"create": {"u": {"@type": "User", "name": "u", "domainId": domain}}})
    user = made["created"]["u"]["id"]
    refused = await _one(client, "x:Domain/set", {"destroy": [domain]})
    assert refused["notDestroyed"][domain]["type"] == "objectIsLinked"
    assert refused["notDestroyed"][domain]["linkedObjects"] == [{"object": "Account", "id": user}]

    await _one(client, "x:Account/set", {"destroy": [user]})
    done = await _one(client, "x:Domain/set", {"destroy": [domain, "nope"]})
    assert done["destroyed"] == [domain]
    assert done["notDestroyed"]["nope"]["type"] == "notFound"
    assert sandbox.domains() == []


@pytest.mark.parametrize("prop", ["id", "createdAt", "dnsZoneFile"])
async def test_server_set_property_in_create_or_update_is_refused(
    sandbox: StalwartSandbox, client: httpx.AsyncClient, prop: str
) -> None:
    domain = sandbox.add_domain("example.com")
    result = await _one(
        client, "x:Domain/set", {"create": {"a": {"name": "new.test", prop: "x"}}, "update": {domain: {prop: "x"}}}
    )
    for error in (result["notCreated"]["a"], result["notUpdated"][domain]):
        assert error["type"] == "invalidPatch"
        assert error["description"] == "Cannot modify server set property"


async def test_update_with_pointer_keys_and_masked_secret_keeps_the_password(
    sandbox: StalwartSandbox, client: httpx.AsyncClient
) -> None:
    domain = sandbox.add_domain("example.com")
    made = await _one(
        client,
        "x:Account/set",
        {
            "create": {
                "g": {"@type": "Group", "name": "g", "domainId": domain},
                "u": {
                    "@type": "User",
                    "name": "u",
                    "domainId": domain,
                    "credentials": {"0": {"@type": "Password", "secret": "correct horse battery"}},
                },
            }
        },
    )
    group, user = made["created"]["g"]["id"], made["created"]["u"]["id"]
    result = await _one(
        client,
        "x:Account/set",
        {
            "update": {
                user: {
                    f"memberGroupIds/{group}": True,
                    "description": "U. Ser",
                    "credentials": {"0": {"@type": "Password", "secret": "****"}},
                }
            }
        },
    )
    assert result["updated"] == {user: None}
    stored = sandbox.store.tables["Account"][user]
    assert stored["credentials"]["0"]["secret"] == "correct horse battery"
    assert stored["memberGroupIds"] == {group: True}
    assert stored["description"] == "U. Ser"


async def test_get_defaults_match_a_bare_domain_create(sandbox: StalwartSandbox, client: httpx.AsyncClient) -> None:
    domain = sandbox.add_domain("example.com")
    [record] = (await _one(client, "x:Domain/get", {"ids": [domain, "missing"]}))["list"]
    assert record["isEnabled"] is True
    assert record["dkimManagement"]["@type"] == "Automatic"
    assert record["dkimManagement"]["algorithms"] == {"Dkim1Ed25519Sha256": True, "Dkim1RsaSha256": True}
    assert record["certificateManagement"] == {"@type": "Manual"}
    assert record["reportAddressUri"] == "mailto:postmaster"
    missing = await _one(client, "x:Domain/get", {"ids": ["missing"]})
    assert missing["notFound"] == ["missing"]


# -- DKIM and DNS ---------------------------------------------------------------------------------------------
async def test_dkim_keys_appear_only_after_the_delay(
    sandbox: StalwartSandbox, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    domain = sandbox.add_domain("example.com")
    query = {"filter": {"domainId": domain}}
    before = await _one(client, "x:DkimSignature/query", query)
    clock.now += 31
    after = await _one(client, "x:DkimSignature/query", query)
    keys = (await _one(client, "x:DkimSignature/get", {"ids": after["ids"]}))["list"]

    assert before["ids"] == []
    assert len(after["ids"]) == 2
    assert {k["@type"] for k in keys} == {"Dkim1Ed25519Sha256", "Dkim1RsaSha256"}
    assert all(k["stage"] == "active" and k["domainId"] == domain for k in keys)
    assert all(k["privateKey"] == {"@type": "Text", "secret": "****"} for k in keys)
    selectors = sorted(k["selector"] for k in keys)
    assert selectors[0].startswith("v1-ed25519-")
    assert selectors[1].startswith("v1-rsa-")
    assert len(selectors[0].rsplit("-", 1)[1]) == 8


async def test_zone_file_lists_records_and_adds_dkim_once_keys_exist(
    sandbox: StalwartSandbox, client: httpx.AsyncClient
) -> None:
    domain = sandbox.add_domain("example.com")
    ask = {"ids": [domain], "properties": ["dnsZoneFile"]}
    early = (await _one(client, "x:Domain/get", ask))["list"][0]["dnsZoneFile"]
    sandbox.generate_dkim_now(domain)
    late = (await _one(client, "x:Domain/get", ask))["list"][0]["dnsZoneFile"]

    assert "_domainkey" not in early
    assert "example.com. IN MX 10 mail.example.com." in early
    assert '_dmarc.example.com. IN TXT "v=DMARC1; p=reject; rua=mailto:postmaster@example.com"' in early
    for fragment in (
        'IN TXT "v=spf1 mx -all"',
        "_smtp._tls.example.com. IN TXT",
        "mta-sts.example.com. IN CNAME",
        "_mta-sts.example.com. IN TXT",
        "autoconfig.example.com. IN CNAME",
        "autodiscover.example.com. IN CNAME",
        "_imaps._tcp.example.com. IN SRV 0 1 993",
        "_submissions._tcp.example.com. IN SRV",
        "_jmap._tcp.example.com. IN SRV",
    ):
        assert fragment in early
    keys = {k["@type"]: k for k in sandbox.dkim_keys(domain)}
    ed = keys["Dkim1Ed25519Sha256"]
    assert (
        f'{ed["selector"]}._domainkey.example.com. IN TXT "v=DKIM1; k=ed25519; h=sha256; p={ed["publicKey"]}"'
    ) in late
    assert "k=rsa; h=sha256; p=" in late


def test_long_dkim_value_is_written_as_parenthesised_chunks_of_255_bytes() -> None:
    key = {"@type": "Dkim1RsaSha256", "selector": "s", "stage": "active", "publicKey": "A" * 400}
    text = zone_file({"name": "example.com", "reportAddressUri": None}, [key], "mx.example.com")
    value = "v=DKIM1; k=rsa; h=sha256; p=" + "A" * 400
    assert text.startswith(f's._domainkey.example.com. IN TXT (\n    "{value[:255]}"\n    "{value[255:]}"\n)\n')
    assert "_dmarc" not in text


def test_zone_lists_record_kinds_in_upstream_order_with_the_ua_auto_config_pair() -> None:
    key = {"@type": "Dkim1Ed25519Sha256", "selector": "s1", "stage": "retired", "publicKey": "QUJD"}
    text = zone_file({"name": "example.com", "reportAddressUri": "mailto:postmaster"}, [key], "mail.example.com")
    owners = [line.split(" IN ", 1)[0] for line in text.splitlines()]
    assert owners == [
        "s1._domainkey.example.com.",  # every key, whatever its stage
        "mail.example.com.",  # SPF of the mail host, only because it is under the domain
        "example.com.",
        "example.com.",  # MX
        "_dmarc.example.com.",
        "_caldavs._tcp.example.com.",
        "_carddavs._tcp.example.com.",
        "_imaps._tcp.example.com.",
        "_jmap._tcp.example.com.",
        "_pop3s._tcp.example.com.",
        "_submissions._tcp.example.com.",
        "mta-sts.example.com.",
        "_mta-sts.example.com.",
        "_smtp._tls.example.com.",
        "ua-auto-config.example.com.",
        "_ua-auto-config.example.com.",
        "autoconfig.example.com.",
        "autodiscover.example.com.",
    ]
    assert "ua-auto-config.example.com. IN CNAME mail.example.com.\n" in text
    assert '_ua-auto-config.example.com. IN TXT "v=UAAC1; a=sha256; d=' in text
    other = zone_file({"name": "other.org", "reportAddressUri": None}, [], "mail.example.com")
    assert "v=spf1 a -all" not in other


def test_removing_a_domain_out_of_band_removes_its_keys_first(sandbox: StalwartSandbox) -> None:
    domain = sandbox.add_domain("example.com")
    sandbox.generate_dkim_now(domain)
    assert len(sandbox.dkim_keys(domain)) == 2
    sandbox.delete_domain(domain)
    assert sandbox.dkim_keys(domain) == []
    assert sandbox.store.tables["DkimSignature"] == {}
