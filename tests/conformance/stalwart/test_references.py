"""References inside one request: creation ids (``#<creation id>``) and result references (``#<argument>``).

Sources (stalwartlabs/stalwart): crates/jmap-proto/src/references/resolve.rs (a get's ``ids`` may name
creations; a result reference is evaluated before the call runs), crates/jmap-proto/src/references/eval.rs
(only /get, /changes, /query and /queryChanges results can be referred to; anything else is "not found"),
crates/jmap/src/api/request.rs (a registry /set records its creations for later calls; a failed resolution
answers that call alone with an error), crates/jmap/src/registry/query.rs (filter values are parsed, never
resolved).
"""

from __future__ import annotations

from typing import Any

from tests.conformance.stalwart.conftest import Stalwart

MANUAL = {"dkimManagement": {"@type": "Manual"}}


def _ids_of(call_id: str, name: str, path: str) -> dict[str, Any]:
    return {"#ids": {"resultOf": call_id, "name": name, "path": path}, "properties": ["id", "name"]}


async def test_a_get_reads_what_a_set_created_earlier_in_the_request_by_creation_id(stalwart: Stalwart) -> None:
    name = stalwart.unique_domain()

    created, read = await stalwart.calls(
        ["x:Domain/set", {"create": {"new": {"name": name, **MANUAL}}}, "s"],
        ["x:Domain/get", {"ids": ["#new"], "properties": ["id", "name"]}, "g"],
    )

    domain_id = created[1]["created"]["new"]["id"]
    assert read[0] == "x:Domain/get"
    assert (read[1]["list"], read[1]["notFound"]) == ([{"id": domain_id, "name": name}], [])


async def test_a_creation_id_that_was_refused_fails_the_get_that_names_it(stalwart: Stalwart) -> None:
    name, holder = await stalwart.domain()

    refused, read = await stalwart.calls(
        ["x:Domain/set", {"create": {"new": {"name": name, **MANUAL}}}, "s"],
        ["x:Domain/get", {"ids": ["#new"], "properties": ["id"]}, "g"],
    )

    assert refused[1]["notCreated"]["new"] == {
        "type": "primaryKeyViolation",
        "properties": ["name"],
        "objectId": {"object": "Domain", "id": holder},
    }
    assert read == [
        "error",
        {"type": "invalidResultReference", "description": 'Id reference "new" does not exist or is invalid.'},
        "g",
    ]


async def test_a_result_reference_into_a_set_response_is_not_found(stalwart: Stalwart) -> None:
    name = stalwart.unique_domain()

    created, read = await stalwart.calls(
        ["x:Domain/set", {"create": {"new": {"name": name, **MANUAL}}}, "s"],
        ["x:Domain/get", _ids_of("s", "x:Domain/set", "/created/new/id"), "g"],
    )

    assert set(created[1]["created"]) == {"new"}
    assert read == [
        "error",
        {"type": "invalidResultReference", "description": "Result reference to s#x:Domain/set not found."},
        "g",
    ]


async def test_a_result_reference_to_a_missing_call_name_or_path_fails_that_call_alone(stalwart: Stalwart) -> None:
    name, domain_id = await stalwart.domain()
    query = ["x:Domain/query", {"filter": {"name": name}}, "q"]

    answers = await stalwart.calls(
        query,
        ["x:Domain/get", _ids_of("nope", "x:Domain/query", "/ids"), "a"],
        ["x:Domain/get", _ids_of("q", "x:Account/query", "/ids"), "b"],
        ["x:Domain/get", _ids_of("q", "x:Domain/query", "/nothing"), "c"],
        ["x:Domain/get", _ids_of("q", "x:Domain/query", "/ids"), "d"],
    )

    assert [answer[1] for answer in answers[1:4]] == [
        {"type": "invalidResultReference", "description": "Result reference to nope#x:Domain/query not found."},
        {"type": "invalidResultReference", "description": "Result reference to q#x:Account/query not found."},
        {"type": "invalidResultReference", "description": "Result reference to q#x:Domain/query not found."},
    ]
    assert [answer[0] for answer in answers] == ["x:Domain/query", "error", "error", "error", "x:Domain/get"]
    assert answers[4][1]["list"] == [{"id": domain_id, "name": name}]


async def test_a_creation_id_in_a_query_filter_is_not_resolved(stalwart: Stalwart) -> None:
    name = stalwart.unique_domain()

    created, queried = await stalwart.calls(
        ["x:Domain/set", {"create": {"new": {"name": name, **MANUAL}}}, "s"],
        ["x:DkimSignature/query", {"filter": {"domainId": "#new"}}, "q"],
    )

    assert set(created[1]["created"]) == {"new"}
    assert queried == [
        "error",
        {"type": "unsupportedFilter", "description": "Filter on property domainId is not supported or invalid"},
        "q",
    ]
