"""What authentik refuses and how it says so: lookups, routing, authentication, permissions and crashes.

Sources: DRF's get_object_or_404 and exception handler; authentik/root/urls.py (handler404 and handler500
are authentik/core/views/error.py TemplateViews) with APPEND_SLASH = False in authentik/root/settings.py;
authentik/api/authentication.py; authentik/rbac/{permissions,filters}.py.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conformance.authentik.conftest import GROUPS, Authentik

UNKNOWN_PK = "5f0c1c8e-7d4b-4a43-9c55-0d6d1bb5e0aa"
NO_PERMISSION = {"detail": "You do not have permission to perform this action."}
NO_CREDENTIALS = {"detail": "Authentication credentials were not provided."}
BAD_TOKEN = {"detail": "Token invalid/expired"}
ERROR_VIEW_ALLOW = "GET, HEAD, OPTIONS"


def assert_error_view_refused_a_write(response: httpx.Response) -> None:
    """authentik's error views serve only GET: any other method gets 405, an empty body and this Allow."""
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == ERROR_VIEW_ALLOW
    assert response.headers["content-type"].startswith("text/html")
    assert response.content == b""


@pytest.mark.parametrize("method", ["GET", "PATCH", "PUT", "DELETE"])
async def test_an_unknown_pk_is_404_no_group_and_a_malformed_one_404_not_found(
    authentik: Authentik, method: str
) -> None:
    body = {"name": authentik.name("never")} if method in ("PATCH", "PUT") else None

    unknown = await authentik.request(method, authentik.item(UNKNOWN_PK), json=body)
    malformed = await authentik.request(method, authentik.item("not-a-uuid"), json=body)

    # Django's get_object_or_404 names the model; DRF's wrapper raises a bare Http404 when the id cannot
    # even be converted to a UUID.
    assert (unknown.status_code, unknown.json()) == (404, {"detail": "No Group matches the given query."})
    assert (malformed.status_code, malformed.json()) == (404, {"detail": "Not found."})


@pytest.mark.parametrize("path", ["/api/v3/core/groups", "/api/v3/core/groups/{pk}"])
async def test_without_the_trailing_slash_get_is_a_404_page_and_delete_a_405_never_a_redirect(
    authentik: Authentik, path: str
) -> None:
    group = await authentik.create("slashless")
    path = path.format(pk=group["pk"])

    page = await authentik.request("GET", path)
    delete = await authentik.request("DELETE", path)

    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "location" not in page.headers
    assert_error_view_refused_a_write(delete)
    assert (await authentik.request("GET", authentik.item(group["pk"]))).status_code == 200


async def test_a_method_a_viewset_lacks_is_drfs_json_405(authentik: Authentik) -> None:
    response = await authentik.request("PUT", GROUPS, json={"name": authentik.name("x")})

    assert (response.status_code, response.json()) == (405, {"detail": 'Method "PUT" not allowed.'})


@pytest.mark.parametrize("header", ["Bearer not-a-token", "bearer not-a-token"])
async def test_an_unknown_bearer_token_is_403_token_invalid(authentik: Authentik, header: str) -> None:
    # TokenAuthentication names no WWW-Authenticate challenge, so DRF turns its 401 into a 403.
    listed = await authentik.request("GET", GROUPS, token=None, headers={"Authorization": header})
    fetched = await authentik.request("GET", authentik.item(UNKNOWN_PK), token=None, headers={"Authorization": header})

    assert [(r.status_code, r.json()) for r in (listed, fetched)] == [(403, BAD_TOKEN)] * 2


@pytest.mark.parametrize("header", [None, "Basic YWthZG1pbjpub3Bl", "Bearer"])
async def test_no_bearer_credentials_are_not_provided_for_the_collection(
    authentik: Authentik, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}

    listed = await authentik.request("GET", GROUPS, token=None, headers=headers)
    created = await authentik.request("POST", GROUPS, token=None, headers=headers, json={"name": authentik.name()})

    assert [(r.status_code, r.json()) for r in (listed, created)] == [(403, NO_CREDENTIALS)] * 2


async def test_an_anonymous_request_for_one_group_is_refused_as_lacking_permission(authentik: Authentik) -> None:
    # Object requests pass the permission class unauthenticated; ObjectFilter then finds nothing visible.
    group = await authentik.create("private")

    response = await authentik.request("GET", authentik.item(group["pk"]), token=None)

    assert (response.status_code, response.json()) == (403, NO_PERMISSION)


async def test_a_valid_token_without_permissions_is_refused_before_any_lookup(authentik: Authentik) -> None:
    token = authentik.unprivileged()
    group = await authentik.create("guarded")
    item = authentik.item(group["pk"])

    answers = [
        await authentik.request("GET", GROUPS, token=token),
        await authentik.request("GET", GROUPS, token=token, params={"attributes": "notjson"}),
        await authentik.request("POST", GROUPS, token=token, json={"name": authentik.name("theirs")}),
        await authentik.request("GET", item, token=token),
        await authentik.request("GET", authentik.item(UNKNOWN_PK), token=token),
        await authentik.request("PATCH", item, token=token, json={"attributes": {"x": 1}}),
        await authentik.request("DELETE", item, token=token),
    ]

    assert [(r.status_code, r.json()) for r in answers] == [(403, NO_PERMISSION)] * len(answers)
    assert (await authentik.request("GET", item)).json()["attributes"] == {}


async def test_racing_creates_of_one_name_make_one_group_and_the_losers_crash_page_is_a_405(
    authentik: Authentik,
) -> None:
    # Group.name is checked, then inserted: creates that pass the check together crash on the database's
    # unique constraint, an exception authentik renders through its GET-only error view.
    if authentik.sandbox is not None:
        authentik.sandbox.insert_delay = 0.05  # the window a loaded server has between check and insert
    name = authentik.name("racy")

    answers = await asyncio.gather(*(authentik.request("POST", GROUPS, json={"name": name}) for _ in range(8)))

    statuses = sorted(r.status_code for r in answers)
    assert statuses.count(201) == 1
    assert set(statuses) <= {201, 400, 405}
    for answer in answers:
        if answer.status_code == 405:
            assert_error_view_refused_a_write(answer)
        elif answer.status_code == 400:
            assert answer.json() == {"name": ["Group with this name already exists."]}
    assert await authentik.names(name=name) == [name]
    if authentik.is_sandbox:
        assert 405 in statuses
