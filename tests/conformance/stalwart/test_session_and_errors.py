"""Session discovery and request-level errors.

Sources (stalwartlabs/stalwart): crates/http/src/request.rs (routes, the Content-Type check),
crates/http/src/api/mod.rs (``HttpResponse::unauthorized``), crates/jmap-proto/src/error/request.rs (problem
bodies), crates/jmap-proto/src/request/parser.rs (what is notRequest), tests/src/jmap/principal/get.rs (the
session resource).
"""

from __future__ import annotations

import base64

import pytest

from tests.conformance.stalwart.conftest import USING, Stalwart

STALWART = "urn:stalwart:jmap"


async def test_well_known_jmap_redirects_to_the_session_which_offers_the_management_capability(
    stalwart: Stalwart,
) -> None:
    redirect = await stalwart.http.get("/.well-known/jmap")
    assert redirect.status_code == 307
    assert redirect.headers["location"].endswith("/jmap/session")

    response = await stalwart.http.get("/jmap/session", headers={"Authorization": f"Bearer {stalwart.api_key}"})
    session = response.json()
    account_id = session["primaryAccounts"][STALWART]
    assert session["accounts"][account_id]["accountCapabilities"][STALWART] == {}
    assert STALWART not in session["capabilities"]
    assert session["apiUrl"].endswith("/jmap/")
    limits = session["capabilities"]["urn:ietf:params:jmap:core"]
    assert {"maxCallsInRequest", "maxObjectsInGet", "maxObjectsInSet", "maxSizeRequest"} <= limits.keys()


async def test_the_session_without_credentials_lists_capabilities_only(stalwart: Stalwart) -> None:
    session = (await stalwart.http.get("/jmap/session")).json()
    assert "urn:ietf:params:jmap:core" in session["capabilities"]
    assert "apiUrl" not in session
    assert "accounts" not in session


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer API_bm90LWEta2V5", "Basic " + base64.b64encode(b"nobody@example.com:wrong").decode()],
    ids=["missing", "unknown-api-key", "wrong-password"],
)
async def test_401_is_a_problem_with_a_bearer_and_a_basic_challenge(
    stalwart: Stalwart, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await stalwart.http.post("/jmap/", json={"using": USING, "methodCalls": []}, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "about:blank",
        "status": 401,
        "title": "Unauthorized",
        "detail": "You have to authenticate first.",
    }
    challenges = response.headers.get_list("www-authenticate")
    assert [c.split(" ", 1)[0] for c in challenges] == ["Bearer", "Basic"]
    assert all('realm="Stalwart Server"' in c for c in challenges)


async def test_only_a_wrong_content_type_is_not_json(stalwart: Stalwart) -> None:
    body = b'{"using":["urn:ietf:params:jmap:core","urn:stalwart:jmap"],"methodCalls":[]}'
    wrong = await stalwart.post(content=body, headers={"Content-Type": "text/plain"})
    assert wrong.status_code == 400
    assert wrong.headers["content-type"] == "application/problem+json"
    assert wrong.json() == {
        "type": "urn:ietf:params:jmap:error:notJSON",
        "status": 400,
        "detail": "Failed to parse JSON: The Content-Type header must be application/json.",
    }
    with_charset = await stalwart.post(content=body, headers={"Content-Type": "Application/JSON; charset=utf-8"})
    assert with_charset.status_code == 200
    # No Content-Type at all is not checked.
    assert (await stalwart.post(content=body)).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b'{"using": ["urn:ietf:params:jmap:core"], "methodCalls": [',
        b"not json at all",
        b'{"methodCalls": []}',
        b'{"using": ["urn:ietf:params:jmap:core"], "methodCalls": [["x:Domain/get", {}]]}',
        b'{"using": ["urn:example:unknown"], "methodCalls": []}',
    ],
    ids=["truncated-json", "not-json", "no-using", "call-of-two", "unknown-capability"],
)
async def test_malformed_json_or_a_malformed_request_is_not_request(stalwart: Stalwart, body: bytes) -> None:
    response = await stalwart.post(content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["type"], problem["status"]) == ("urn:ietf:params:jmap:error:notRequest", 400)
    assert "title" not in problem


async def test_more_calls_than_max_calls_in_request_is_a_limit_error(stalwart: Stalwart) -> None:
    session = (await stalwart.http.get("/jmap/session", headers={"Authorization": f"Bearer {stalwart.api_key}"})).json()
    most = session["capabilities"]["urn:ietf:params:jmap:core"]["maxCallsInRequest"]
    calls = [["x:Domain/query", {"limit": 1}, str(i)] for i in range(most + 1)]
    response = await stalwart.post({"using": USING, "methodCalls": calls})
    assert response.status_code == 400
    assert response.json() == {
        "type": "urn:ietf:params:jmap:error:limit",
        "status": 400,
        "detail": "The request exceeds the maximum number of calls in a single request.",
        "limit": "maxCallsInRequest",
    }


async def test_an_unknown_method_fails_alone_and_names_itself(stalwart: Stalwart) -> None:
    unknown, known = await stalwart.calls(["x:Domain/changes", {}, "a"], ["x:Domain/query", {"limit": 1}, "b"])
    assert unknown == ["error", {"type": "unknownMethod", "description": "x:Domain/changes"}, "a"]
    assert known[0] == "x:Domain/query"
