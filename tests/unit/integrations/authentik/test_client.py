"""The authentik wire client: requests it sends, pagination, error mapping and Retry-After parsing."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tenantry.integrations.authentik.client import AuthentikClient
from tenantry.integrations.authentik.errors import (
    AuthentikAuthError,
    AuthentikConnectionError,
    AuthentikError,
    AuthentikForbiddenError,
    AuthentikNotFoundError,
    AuthentikRateLimitError,
    AuthentikResponseError,
    AuthentikServerError,
    AuthentikTimeoutError,
    AuthentikValidationError,
)

TOKEN = "s3cret-api-token-value"
PK = "0b4e9a3c-5d6f-4a1b-8c2d-3e4f5a6b7c8d"

Handler = Callable[[httpx.Request], httpx.Response]


def group_json(name: str = "tenant-acme", pk: str = PK, **extra: Any) -> dict[str, Any]:
    return {
        "pk": pk,
        "num_pk": 1,
        "name": name,
        "is_superuser": False,
        "attributes": {"tenant_id": "t1"},
        "users_obj": None,
        "children": [],
        "roles_obj": [],
        **extra,
    }


def page_json(results: list[dict[str, Any]], *, current: int, next_page: int) -> dict[str, Any]:
    return {
        "pagination": {
            "next": next_page,
            "previous": max(0, current - 1),
            "count": 5,
            "current": current,
            "total_pages": 3,
            "start_index": 1,
            "end_index": 2,
        },
        "results": results,
        "autocomplete": {},
    }


class Recorder:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)


async def call(
    handler: Handler, action: Callable[[AuthentikClient], Any], base_url: str = "https://auth.example.test"
) -> tuple[Any, list[httpx.Request]]:
    recorder = Recorder(handler)
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as http:
        result = await action(AuthentikClient(http, base_url, TOKEN))
    return result, recorder.requests


async def test_get_group_sends_bearer_token_and_excludes_users() -> None:
    group, [request] = await call(
        lambda _: httpx.Response(200, json=group_json(unknown_field=[1, 2])), lambda client: client.get_group(PK)
    )

    assert request.method == "GET"
    assert request.url.path == f"/api/v3/core/groups/{PK}/"
    assert request.url.params["include_users"] == "false"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert (group.pk, group.name, group.attributes) == (PK, "tenant-acme", {"tenant_id": "t1"})


async def test_base_url_with_a_path_prefix_and_trailing_slash_is_joined_once() -> None:
    _, [request] = await call(
        lambda _: httpx.Response(200, json=group_json()),
        lambda client: client.get_group(PK),
        base_url="https://proxy.test/sso/",
    )

    assert str(request.url).startswith(f"https://proxy.test/sso/api/v3/core/groups/{PK}/")


async def test_a_malformed_stored_pk_cannot_escape_the_groups_path() -> None:
    _, [request] = await call(
        lambda _: httpx.Response(404, json={"detail": "nope"}), lambda client: _swallow(client.get_group("../users/1"))
    )

    assert request.url.raw_path.startswith(b"/api/v3/core/groups/..%2Fusers%2F1/")


async def _swallow(awaitable: Any) -> None:
    with contextlib.suppress(AuthentikError):
        await awaitable


async def test_find_groups_follows_next_until_zero_even_when_page_size_is_clamped() -> None:
    pages = {
        1: page_json([group_json("a", pk="1"), group_json("b", pk="2")], current=1, next_page=2),
        2: page_json([group_json("c", pk="3"), group_json("d", pk="4")], current=2, next_page=3),
        3: page_json([group_json("e", pk="5")], current=3, next_page=0),
    }

    def serve(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=pages[int(request.url.params["page"])])

    groups, requests = await call(serve, lambda client: client.find_groups())

    assert [group.name for group in groups] == ["a", "b", "c", "d", "e"]
    assert [request.url.params["page"] for request in requests] == ["1", "2", "3"]
    assert {request.url.params["page_size"] for request in requests} == {"100"}
    assert {request.url.params["include_users"] for request in requests} == {"false"}


async def test_find_groups_sends_exact_name_and_attributes_as_json() -> None:
    _, [request] = await call(
        lambda _: httpx.Response(200, json=page_json([], current=1, next_page=0)),
        lambda client: client.find_groups(name="tenant-acme", attributes={"tenant_id": "t1"}),
    )

    assert request.url.params["name"] == "tenant-acme"
    assert json.loads(request.url.params["attributes"]) == {"tenant_id": "t1"}


async def test_find_groups_refuses_pagination_that_goes_backwards() -> None:
    with pytest.raises(AuthentikResponseError, match="pagination"):
        await call(
            lambda _: httpx.Response(200, json=page_json([group_json()], current=1, next_page=1)),
            lambda client: client.find_groups(),
        )


async def test_create_group_posts_name_attributes_and_superuser_flag() -> None:
    group, [request] = await call(
        lambda _: httpx.Response(201, json=group_json()),
        lambda client: client.create_group("tenant-acme", {"tenant_id": "t1"}),
    )

    assert (request.method, request.url.path) == ("POST", "/api/v3/core/groups/")
    assert json.loads(request.content) == {
        "name": "tenant-acme",
        "is_superuser": False,
        "attributes": {"tenant_id": "t1"},
    }
    assert group.pk == PK


async def test_update_group_patches_only_the_fields_given() -> None:
    _, [request] = await call(
        lambda _: httpx.Response(200, json=group_json()), lambda client: client.update_group(PK, attributes={"a": 1})
    )

    assert (request.method, request.url.path) == ("PATCH", f"/api/v3/core/groups/{PK}/")
    assert json.loads(request.content) == {"attributes": {"a": 1}}


async def test_delete_group_sends_delete_and_accepts_204() -> None:
    result, [request] = await call(lambda _: httpx.Response(204), lambda client: client.delete_group(PK))

    assert result is None
    assert (request.method, request.url.path) == ("DELETE", f"/api/v3/core/groups/{PK}/")


async def test_a_200_whose_body_is_not_a_group_is_a_response_error() -> None:
    with pytest.raises(AuthentikResponseError, match="Group") as caught:
        await call(lambda _: httpx.Response(200, text="<html>login</html>"), lambda client: client.get_group(PK))

    assert type(caught.value) is AuthentikResponseError


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, {"name": ["Group with this name already exists."]}, AuthentikValidationError),
        (401, {"detail": "Authentication credentials were not provided."}, AuthentikAuthError),
        (403, {"detail": "Token invalid/expired"}, AuthentikAuthError),
        (403, {"detail": "You do not have permission to perform this action."}, AuthentikForbiddenError),
        (404, {"detail": "No Group matches the given query."}, AuthentikNotFoundError),
        (429, {"detail": "Request was throttled."}, AuthentikRateLimitError),
        (500, None, AuthentikServerError),
        (502, None, AuthentikServerError),
        (503, None, AuthentikServerError),
    ],
)
async def test_each_error_status_maps_to_its_error_class(
    status: int, body: Any, expected: type[AuthentikResponseError]
) -> None:
    response = httpx.Response(status, json=body) if body is not None else httpx.Response(status, text="oops")

    with pytest.raises(expected) as caught:
        await call(lambda _: response, lambda client: client.get_group(PK))

    assert (type(caught.value), caught.value.status) == (expected, status)


CRASH_PAGE = httpx.Response(405, headers={"Allow": "GET, HEAD, OPTIONS", "Content-Type": "text/html; charset=utf-8"})


@pytest.mark.parametrize(
    "action",
    [
        lambda client: client.create_group("tenant-acme", {}),
        lambda client: client.update_group(PK, name="x"),
        lambda client: client.delete_group(PK),
    ],
    ids=["POST", "PATCH", "DELETE"],
)
async def test_a_405_crash_page_to_a_write_the_endpoint_accepts_is_a_server_error(
    action: Callable[[AuthentikClient], Any],
) -> None:
    with pytest.raises(AuthentikServerError) as caught:
        await call(lambda _: CRASH_PAGE, action)

    assert caught.value.status == 405
    assert "authentik failed while handling the request" in str(caught.value)


@pytest.mark.parametrize(
    ("response", "action"),
    [
        # DRF's own 405, in JSON, says the endpoint lacks the method: a wrong URL or release, not a crash.
        (httpx.Response(405, json={"detail": 'Method "PATCH" not allowed.'}), lambda c: c.update_group(PK, name="x")),
        (CRASH_PAGE, lambda c: c.get_group(PK)),  # a crash on GET is a 500; a 405 to GET is something else
        (CRASH_PAGE, lambda c: c.delete_group("a.b")),  # no such route: authentik's 404 view answers DELETE 405
    ],
    ids=["drf-json-405", "get", "unrouted-path"],
)
async def test_other_405s_stay_unexpected_responses(
    response: httpx.Response, action: Callable[[AuthentikClient], Any]
) -> None:
    with pytest.raises(AuthentikResponseError) as caught:
        await call(lambda _: response, action)

    assert type(caught.value) is AuthentikResponseError


async def test_a_bare_list_of_messages_is_the_detail() -> None:
    body = ["filter: failed to parse JSON"]
    with pytest.raises(AuthentikValidationError) as caught:
        await call(lambda _: httpx.Response(400, json=body), lambda client: client.find_groups(name="x"))

    assert (caught.value.detail, caught.value.field_errors) == ("filter: failed to parse JSON", {})


async def test_unlisted_status_is_a_plain_response_error() -> None:
    with pytest.raises(AuthentikResponseError) as caught:
        await call(lambda _: httpx.Response(409, json={"detail": "conflict"}), lambda client: client.get_group(PK))

    assert type(caught.value) is AuthentikResponseError
    assert (caught.value.status, caught.value.detail) == (409, "conflict")


async def test_validation_error_carries_field_errors_including_bare_strings() -> None:
    body = {"name": ["This field must be unique."], "non_field_errors": "No recovery flow set.", "code": "x"}

    with pytest.raises(AuthentikValidationError) as caught:
        await call(lambda _: httpx.Response(400, json=body), lambda client: client.create_group("tenant-acme", {}))

    assert caught.value.field_errors == {
        "name": ["This field must be unique."],
        "non_field_errors": ["No recovery flow set."],
    }


async def test_403_detail_is_the_servers_own_message() -> None:
    with pytest.raises(AuthentikAuthError) as caught:
        await call(
            lambda _: httpx.Response(403, json={"detail": "Token invalid/expired"}), lambda client: client.ping()
        )

    assert caught.value.detail == "Token invalid/expired"


async def test_retry_after_seconds_is_carried_on_429() -> None:
    with pytest.raises(AuthentikRateLimitError) as caught:
        await call(lambda _: httpx.Response(429, headers={"Retry-After": "12"}), lambda client: client.ping())

    assert caught.value.retry_after == 12.0


async def test_retry_after_http_date_is_carried_on_503() -> None:
    headers = {"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"}

    with pytest.raises(AuthentikServerError) as caught:
        await call(lambda _: httpx.Response(503, headers=headers), lambda client: client.ping())

    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 0


async def test_token_never_appears_in_error_text_even_when_the_server_echoes_it() -> None:
    echoed = {"detail": f"Token {TOKEN} invalid/expired"}

    with pytest.raises(AuthentikAuthError) as caught:
        await call(lambda _: httpx.Response(403, json=echoed), lambda client: client.ping())

    assert TOKEN not in str(caught.value)
    assert TOKEN not in caught.value.detail


async def test_token_never_appears_in_connection_error_text() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"refused while sending {request.headers['Authorization']}", request=request)

    with pytest.raises(AuthentikConnectionError) as caught:
        await call(refuse, lambda client: client.ping())

    assert TOKEN not in str(caught.value)
    assert caught.value.url == "https://auth.example.test"
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


async def test_timeout_maps_to_timeout_error_not_connection_error() -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(AuthentikTimeoutError) as caught:
        await call(hang, lambda client: client.get_group(PK))

    assert not isinstance(caught.value, AuthentikConnectionError)
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
