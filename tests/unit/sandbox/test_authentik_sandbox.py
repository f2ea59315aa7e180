"""The authentik sandbox's groups API and its controls, driven in-process over HTTP (what authentik itself does is
also pinned by tests/conformance/authentik/, which runs against this sandbox)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tenantry.sandbox.authentik import AuthentikSandbox

TOKEN = "sandbox-api-token"
GROUPS = "/api/v3/core/groups/"
NO_PERMISSION = {"detail": "You do not have permission to perform this action."}


def _client(sandbox: AuthentikSandbox, token: str | None = TOKEN) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(sandbox.app), base_url="http://authentik.test", headers=headers
    )


@pytest.fixture
def sandbox() -> AuthentikSandbox:
    return AuthentikSandbox([TOKEN])


def _without_builtin(sandbox: AuthentikSandbox) -> AuthentikSandbox:
    """The sandbox with the group a new install starts with removed, for tests that count groups."""
    for group in sandbox.groups(builtin=True):
        sandbox.delete_group(group["pk"])
    return sandbox


@pytest.fixture
async def client(sandbox: AuthentikSandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(sandbox) as c:
        yield c


async def _names(client: httpx.AsyncClient, **params: str) -> list[str]:
    response = await client.get(GROUPS, params=params)
    assert response.status_code == 200, response.text
    return [g["name"] for g in response.json()["results"]]


# -- pagination ------------------------------------------------------------------------------------------
async def test_list_clamps_page_size_to_the_maximum_and_walks_every_page_by_next(
    sandbox: AuthentikSandbox, client: httpx.AsyncClient
) -> None:
    _without_builtin(sandbox)
    for i in range(230):
        sandbox.add_group(f"g{i:03d}")
    seen: list[str] = []
    blocks = []
    page = 1
    while page:
        body = (await client.get(GROUPS, params={"page": page, "page_size": 500})).json()
        blocks.append(body["pagination"])
        seen += [g["name"] for g in body["results"]]
        page = body["pagination"]["next"]
    assert seen == [f"g{i:03d}" for i in range(230)]
    assert [len(b) for b in blocks] == [7, 7, 7]
    assert blocks[0] == {
        "next": 2,
        "previous": 0,
        "count": 230,
        "current": 1,
        "total_pages": 3,
        "start_index": 1,
        "end_index": 100,
    }
    assert blocks[2] == {
        "next": 0,
        "previous": 2,
        "count": 230,
        "current": 3,
        "total_pages": 3,
        "start_index": 201,
        "end_index": 230,
    }


async def test_list_defaults_to_twenty_per_page_with_autocomplete_block(
    sandbox: AuthentikSandbox, client: httpx.AsyncClient
) -> None:
    for i in range(21):
        sandbox.add_group(f"g{i:02d}")
    body = (await client.get(GROUPS)).json()
    assert len(body["results"]) == 20
    assert body["pagination"]["next"] == 2
    assert body["autocomplete"] == {}


async def test_page_size_default_and_maximum_are_configurable() -> None:
    sandbox = _without_builtin(AuthentikSandbox([TOKEN], default_page_size=3, max_page_size=5))
    for i in range(12):
        sandbox.add_group(f"g{i:02d}")
    async with _client(sandbox) as client:
        assert len(await _names(client)) == 3
        assert len(await _names(client, page_size="50")) == 5


async def test_a_new_install_lists_its_admin_group_with_akadmin(client: httpx.AsyncClient) -> None:
    body = (await client.get(GROUPS)).json()
    assert body["pagination"]["count"] == 1
    (admins,) = body["results"]
    assert (admins["name"], admins["is_superuser"]) == ("authentik Admins", True)
    assert [u["username"] for u in admins["users_obj"]] == ["akadmin"]
    assert admins["num_pk"] == int(str(uuid.UUID(admins["pk"]).int)[:5])


async def test_empty_list_is_one_empty_page(sandbox: AuthentikSandbox, client: httpx.AsyncClient) -> None:
    _without_builtin(sandbox)
    body = (await client.get(GROUPS)).json()
    assert body == {
        "pagination": {
            "next": 0,
            "previous": 0,
            "count": 0,
            "current": 1,
            "total_pages": 1,
            "start_index": 0,
            "end_index": 0,
        },
        "results": [],
        "autocomplete": {},
    }


async def test_page_past_the_end_is_404_invalid_page(sandbox: AuthentikSandbox, client: httpx.AsyncClient) -> None:
    sandbox.add_group("only")
    response = await client.get(GROUPS, params={"page": 3})
    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid page."}


# -- filters ---------------------------------------------------------------------------------------------
async def test_name_filter_is_exact_and_case_sensitive(sandbox: AuthentikSandbox, client: httpx.AsyncClient) -> None:
    for name in ("Acme", "acme", "acme-2"):
        sandbox.add_group(name)
    assert await _names(client, name="acme") == ["acme"]
    assert await _names(client, name="Acme") == ["Acme"]
    assert await _names(client, name="ACME") == []


async def test_attributes_filter_compares_json_types(sandbox: AuthentikSandbox, client: httpx.AsyncClient) -> None:
    sandbox.add_group("int", {"n": 42, "flag": True})
    sandbox.add_group("str", {"n": "42", "flag": 1})
    sandbox.add_group("nested", {"meta": {"tier": "gold", "tags": ["a", "b"]}})
    assert await _names(client, attributes=json.dumps({"n": 42})) == ["int"]
    assert await _names(client, attributes=json.dumps({"n": "42"})) == ["str"]
    assert await _names(client, attributes=json.dumps({"flag": True})) == ["int"]
    assert await _names(client, attributes=json.dumps({"flag": 1})) == ["str"]
    assert await _names(client, attributes=json.dumps({"n": 42, "flag": 1})) == []
    assert await _names(client, attributes=json.dumps({"meta__tier": "gold"})) == ["nested"]
    assert await _names(client, attributes=json.dumps({"meta__tags__1": "b"})) == ["nested"]
    assert await _names(client, attributes=json.dumps({"missing": None})) == []


async def test_search_is_case_insensitive_substring_and_ordering_can_reverse(
    sandbox: AuthentikSandbox, client: httpx.AsyncClient
) -> None:
    _without_builtin(sandbox)
    for name in ("tenant-Acme", "tenant-beta", "other"):
        sandbox.add_group(name)
    sandbox.add_group("root", is_superuser=True)
    assert await _names(client, search="TENANT") == ["tenant-Acme", "tenant-beta"]
    assert await _names(client, search="tenant, beta") == ["tenant-beta"]  # every term must match
    assert await _names(client, search="rue") == ["root"]  # the flag is searched as PostgreSQL prints it
    assert await _names(client, ordering="-name") == ["tenant-beta", "tenant-Acme", "root", "other"]
    assert await _names(client, ordering="bogus") == ["other", "root", "tenant-Acme", "tenant-beta"]
    assert await _names(client, ordering="num_pk") == ["other", "root", "tenant-Acme", "tenant-beta"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        *[("true", ["root"]), ("True", ["root"]), ("2", ["root"]), ("false", ["plain"]), ("3", ["plain"])],
        *[("1", ["plain", "root"]), ("0", ["plain", "root"]), ("yes", ["plain", "root"])],
    ],
)
async def test_is_superuser_filter_reads_values_as_django_null_boolean_select_and_ignores_others(
    sandbox: AuthentikSandbox, client: httpx.AsyncClient, raw: str, expected: list[str]
) -> None:
    _without_builtin(sandbox)
    sandbox.add_group("plain")
    sandbox.add_group("root", is_superuser=True)
    assert await _names(client, is_superuser=raw) == expected


async def test_member_filters_refuse_unknown_users_per_field(
    sandbox: AuthentikSandbox, client: httpx.AsyncClient
) -> None:
    response = await client.get(GROUPS, params={"members_by_pk": "x1", "members_by_username": "nobody"})
    assert response.status_code == 400
    assert response.json() == {
        "members_by_pk": ["\u201cx1\u201d is not a valid value."],
        "members_by_username": ["Select a valid choice. nobody is not one of the available choices."],
    }
    assert await _names(client, members_by_username="akadmin") == ["authentik Admins"]


async def test_include_flags_fill_or_null_the_related_objects(
    sandbox: AuthentikSandbox, client: httpx.AsyncClient
) -> None:
    parent = sandbox.add_group("parent")
    created = await client.post(GROUPS, json={"name": "child", "parents": [parent["pk"]]})
    assert created.status_code == 201
    child = created.json()
    plain = (await client.get(f"{GROUPS}{parent['pk']}/")).json()
    assert (plain["users_obj"], plain["children"], plain["children_obj"]) == ([], [child["pk"]], None)
    lean = (
        await client.get(f"{GROUPS}{parent['pk']}/", params={"include_users": "false", "include_children": "true"})
    ).json()
    assert lean["users_obj"] is None
    assert [c["name"] for c in lean["children_obj"]] == ["child"]
    up = (
        await client.get(
            f"{GROUPS}{child['pk']}/", params={"include_parents": "true", "include_inherited_roles": "true"}
        )
    ).json()
    assert [p["pk"] for p in up["parents_obj"]] == [parent["pk"]]
    assert up["inherited_roles_obj"] == []
    listed = (await client.get(GROUPS, params={"include_users": "false"})).json()["results"]
    assert [g["users_obj"] for g in listed] == [None, None, None]


# -- validation ------------------------------------------------------------------------------------------
async def test_duplicate_name_is_400_but_another_case_is_a_new_group(client: httpx.AsyncClient) -> None:
    assert (await client.post(GROUPS, json={"name": "tenant-acme"})).status_code == 201
    duplicate = await client.post(GROUPS, json={"name": "tenant-acme", "attributes": {"x": 1}})
    assert duplicate.status_code == 400
    assert duplicate.json() == {"name": ["Group with this name already exists."]}
    assert (await client.post(GROUPS, json={"name": "Tenant-Acme"})).status_code == 201


async def test_create_reports_every_bad_field_and_stores_nothing(
    sandbox: AuthentikSandbox, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        GROUPS,
        json={"is_superuser": "maybe", "attributes": [1], "users": [99], "parents": ["not-a-uuid"], "roles": "x"},
    )
    assert response.status_code == 400
    assert response.json() == {
        "name": ["This field is required."],
        "is_superuser": ["Must be a valid boolean."],
        "parents": ['Invalid pk "not-a-uuid" - object does not exist.'],
        "users": ['Invalid pk "99" - object does not exist.'],
        "attributes": ["Value must be a dictionary, and not have any duplicate keys."],
        "roles": ['Expected a list of items but got type "str".'],
    }
    assert sandbox.groups() == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"name": ""}, {"name": ["This field may not be blank."]}),
        ({"name": None}, {"name": ["This field may not be null."]}),
        ({"name": ["a"]}, {"name": ["Not a valid string."]}),
        ([{"name": "a"}], {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}),
    ],
)
async def test_create_rejects_unusable_bodies_with_drf_messages(
    client: httpx.AsyncClient, body: object, expected: dict[str, list[str]]
) -> None:
    response = await client.post(GROUPS, json=body)
    assert response.status_code == 400
    assert response.json() == expected


async def test_create_with_malformed_json_is_400_with_detail(client: httpx.AsyncClient) -> None:
    response = await client.post(GROUPS, content=b"{oops", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error")


def _assert_crash_page_for_a_write(response: httpx.Response) -> None:
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, OPTIONS"
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.content == b""


async def test_concurrent_creates_of_one_name_yield_one_group_and_the_crash_page_405(
    sandbox: AuthentikSandbox, client: httpx.AsyncClient
) -> None:
    sandbox.insert_delay = 0.05
    first, second = await asyncio.gather(
        client.post(GROUPS, json={"name": "racy"}), client.post(GROUPS, json={"name": "racy"})
    )
    by_status = {r.status_code: r for r in (first, second)}
    assert sorted(by_status) == [201, 405]
    _assert_crash_page_for_a_write(by_status[405])
    assert [g["name"] for g in sandbox.groups()] == ["racy"]


async def test_a_rename_that_loses_the_race_crashes_the_same_way(
    sandbox: AuthentikSandbox, client: httpx.AsyncClient
) -> None:
    sandbox.insert_delay = 0.05
    group = sandbox.add_group("before")
    create, rename = await asyncio.gather(
        client.post(GROUPS, json={"name": "after"}), client.patch(f"{GROUPS}{group['pk']}/", json={"name": "after"})
    )
    assert create.status_code == 201
    _assert_crash_page_for_a_write(rename)
    assert sandbox.get_group(group["pk"]) == group


@pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE"])
async def test_injected_crash_answers_a_write_405_and_applies_nothing(
    sandbox: AuthentikSandbox, client: httpx.AsyncClient, method: str
) -> None:
    group = sandbox.add_group("kept", {"a": 1})
    sandbox.controls.crash(r"/core/groups/", method=method, times=1)
    path = GROUPS if method == "POST" else f"{GROUPS}{group['pk']}/"
    body = {"name": "new"} if method != "DELETE" else None
    crashed = await client.request(method, path, json=body)
    _assert_crash_page_for_a_write(crashed)
    assert [g["name"] for g in sandbox.groups()] == ["kept"]
    assert (await client.request(method, path, json=body)).status_code in (200, 201, 204)


async def test_injected_crash_answers_a_read_500_html_and_is_set_over_http(client: httpx.AsyncClient) -> None:
    rule = await client.post("/_sandbox/faults", json={"kind": "crash", "path": "/core/groups/", "times": 1})
    assert rule.status_code == 200
    crashed = await client.get(GROUPS)
    assert crashed.status_code == 500
    assert crashed.headers["content-type"] == "text/html; charset=utf-8"
    with pytest.raises(json.JSONDecodeError):
        crashed.json()
    assert (await client.get(GROUPS)).status_code == 200


async def test_a_create_after_the_first_finished_gets_the_400_not_the_500(
    sandbox: AuthentikSandbox, client: httpx.AsyncClient
) -> None:
    sandbox.insert_delay = 0.01
    assert (await client.post(GROUPS, json={"name": "calm"})).status_code == 201
    assert (await client.post(GROUPS, json={"name": "calm"})).status_code == 400


# -- authentication --------------------------------------------------------------------------------------
async def test_missing_credentials_are_403_not_provided(sandbox: AuthentikSandbox) -> None:
    async with _client(sandbox, token=None) as anonymous:
        response = await anonymous.get(GROUPS)
    assert response.status_code == 403
    assert response.json() == {"detail": "Authentication credentials were not provided."}


@pytest.mark.parametrize("header", ["Bearer wrong", "bearer wrong", "Bearer sandbox-api-token x"])
async def test_unknown_bearer_token_is_403_invalid(sandbox: AuthentikSandbox, header: str) -> None:
    async with _client(sandbox, token=None) as c:
        response = await c.post(GROUPS, json={"name": "x"}, headers={"Authorization": header})
    assert response.status_code == 403
    assert response.json() == {"detail": "Token invalid/expired"}
    assert sandbox.groups() == []


@pytest.mark.parametrize("header", ["Basic c2FuZGJveC1hcGktdG9rZW4=", "Bearer", "Bearer   ", TOKEN])
async def test_another_scheme_or_a_header_without_a_token_is_no_credentials(
    sandbox: AuthentikSandbox, header: str
) -> None:
    async with _client(sandbox, token=None) as c:
        response = await c.post(GROUPS, json={"name": "x"}, headers={"Authorization": header})
    assert (response.status_code, response.json()) == (403, {"detail": "Authentication credentials were not provided."})


async def test_each_write_needs_its_own_permission() -> None:
    view = "authentik_core.view_group"
    sandbox = AuthentikSandbox([TOKEN], permissions={"viewer": {view}, "editor": {view, "authentik_core.change_group"}})
    group = sandbox.add_group("g")
    item = f"{GROUPS}{group['pk']}/"
    async with _client(sandbox, token="viewer") as viewer, _client(sandbox, token="editor") as editor:
        assert (await viewer.get(item)).status_code == 200
        assert (await viewer.get(f"{GROUPS}not-a-uuid/")).json() == {"detail": "Not found."}
        assert [
            (await viewer.patch(item, json={"name": "x"})).status_code,
            (await viewer.post(GROUPS)).status_code,
        ] == [
            403,
            403,
        ]
        assert (await editor.patch(item, json={"name": "renamed"})).status_code == 200
        assert (await editor.delete(item)).json() == NO_PERMISSION


async def test_the_superuser_flag_needs_its_own_permissions_as_authentiks_tests_assert() -> None:
    # authentik/core/tests/test_groups_api.py: test_superuser_no_perm, test_superuser_update_no_perm and
    # test_superuser_update_no_change.
    perms = {f"authentik_core.{p}_group" for p in ("add", "view", "change")}
    sandbox = AuthentikSandbox([TOKEN], permissions={"editor": perms})
    root = sandbox.add_group("root", is_superuser=True)
    async with _client(sandbox, token="editor") as c:
        created = await c.post(GROUPS, json={"name": "new", "is_superuser": True})
        lowered = await c.patch(f"{GROUPS}{root['pk']}/", json={"is_superuser": False})
        unchanged = await c.patch(f"{GROUPS}{root['pk']}/", json={"name": "root2", "is_superuser": True})
        plain = await c.post(GROUPS, json={"name": "plain", "is_superuser": False})
    assert created.json() == {"is_superuser": ["User does not have permission to set superuser status to True."]}
    assert lowered.json() == {"is_superuser": ["User does not have permission to set superuser status to False."]}
    assert (unchanged.status_code, plain.status_code) == (200, 201)


async def test_accept_token_hook_admits_tokens_beyond_the_api_tokens() -> None:
    sandbox = AuthentikSandbox([TOKEN], accept_token=lambda token: token == "oauth-access")
    async with _client(sandbox, token="oauth-access") as c:
        assert (await c.get(GROUPS)).status_code == 200
    async with _client(sandbox, token="oauth-other") as c:
        assert (await c.get(GROUPS)).status_code == 403


async def test_extra_routes_are_served_beside_the_api_without_api_auth() -> None:
    async def discovery(request: Request) -> JSONResponse:
        return JSONResponse({"issuer": "http://authentik.test/application/o/portal/"})

    sandbox = AuthentikSandbox(
        [TOKEN], extra_routes=[Route("/application/o/portal/.well-known/openid-configuration", discovery)]
    )
    async with _client(sandbox, token=None) as c:
        response = await c.get("/application/o/portal/.well-known/openid-configuration")
    assert response.json() == {"issuer": "http://authentik.test/application/o/portal/"}


# -- retrieve, update, delete ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pk", "detail"),
    [
        ("0b0c3a4e-3b46-4f0a-9a4e-000000000000", "No Group matches the given query."),
        ("0b0c3a4e3b464f0a9a4e000000000000", "No Group matches the given query."),
        ("not-a-uuid", "Not found."),
        ("12", "Not found."),
    ],
)
@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_unknown_pk_is_404_no_group_and_malformed_pk_is_404_not_found(
    client: httpx.AsyncClient, pk: str, detail: str, method: str
) -> None:
    response = await client.request(method, f"{GROUPS}{pk}/", json={} if method == "PATCH" else None)
    assert (response.status_code, response.json()) == (404, {"detail": detail})


@pytest.mark.parametrize("path", ["/api/v3/core/groups", f"{GROUPS}a.b/", "/api/v3/core/nothing/"])
async def test_an_unrouted_api_path_is_django_404_html_to_get_and_405_to_writes(
    client: httpx.AsyncClient, path: str
) -> None:
    page = await client.get(path)
    assert (page.status_code, page.headers["content-type"]) == (404, "text/html; charset=utf-8")
    assert "location" not in page.headers  # APPEND_SLASH is off: no redirect
    for method in ("DELETE", "POST", "PATCH"):
        _assert_crash_page_for_a_write(await client.request(method, path))
    options = await client.options(path)
    assert (options.status_code, options.headers["allow"]) == (200, "GET, HEAD, OPTIONS")


async def test_patch_replaces_attributes_wholesale_and_keeps_other_fields(
    sandbox: AuthentikSandbox, client: httpx.AsyncClient
) -> None:
    group = sandbox.add_group("tenant-acme", {"tenant_id": "t1", "tenant_slug": "acme"}, is_superuser=True)
    response = await client.patch(f"{GROUPS}{group['pk']}/", json={"attributes": {"tenant_id": "t1"}})
    assert response.status_code == 200
    assert response.json()["attributes"] == {"tenant_id": "t1"}
    stored = sandbox.get_group(group["pk"])
    assert stored is not None
    assert (stored["name"], stored["is_superuser"], stored["attributes"]) == ("tenant-acme", True, {"tenant_id": "t1"})


async def test_put_requires_a_name_renames_and_leaves_unsent_fields_alone_but_members(
    sandbox: AuthentikSandbox, client: httpx.AsyncClient
) -> None:
    member = sandbox.add_user("carol")
    group = (await client.post(GROUPS, json={"name": "old", "users": [member]})).json()
    sandbox.add_group("taken")
    missing = await client.put(f"{GROUPS}{group['pk']}/", json={"attributes": {}})
    assert (missing.status_code, missing.json()) == (400, {"name": ["This field is required."]})
    clash = await client.put(f"{GROUPS}{group['pk']}/", json={"name": "taken"})
    assert clash.json() == {"name": ["Group with this name already exists."]}
    same = await client.put(f"{GROUPS}{group['pk']}/", json={"name": "old", "attributes": {"a": 1}})
    assert same.status_code == 200
    renamed = await client.put(f"{GROUPS}{group['pk']}/", json={"name": "new"})
    # Like DRF, a PUT replaces what it sends and the fields with a default: users (an empty list).
    assert renamed.status_code == 200
    assert (renamed.json()["name"], renamed.json()["attributes"], renamed.json()["users"]) == ("new", {"a": 1}, [])


async def test_delete_is_204_then_the_group_is_404(sandbox: AuthentikSandbox, client: httpx.AsyncClient) -> None:
    group = sandbox.add_group("doomed")
    deleted = await client.delete(f"{GROUPS}{group['pk']}/")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert (await client.get(f"{GROUPS}{group['pk']}/")).status_code == 404
    assert (await client.delete(f"{GROUPS}{group['pk']}/")).status_code == 404
    assert sandbox.get_group(group["pk"]) is None


async def test_deleting_a_parent_unlinks_it_from_its_children(
    sandbox: AuthentikSandbox, client: httpx.AsyncClient
) -> None:
    parent = sandbox.add_group("parent")
    child = (await client.post(GROUPS, json={"name": "child", "parents": [parent["pk"]]})).json()
    sandbox.delete_group(parent["pk"])
    assert (await client.get(f"{GROUPS}{child['pk']}/")).json()["parents"] == []


async def test_unsupported_method_is_a_json_405(sandbox: AuthentikSandbox, client: httpx.AsyncClient) -> None:
    response = await client.put(GROUPS, json={"name": "x"})
    assert (response.status_code, response.json()) == (405, {"detail": 'Method "PUT" not allowed.'})
    unknown = await client.post(f"{GROUPS}0b0c3a4e-3b46-4f0a-9a4e-000000000000/")
    assert (unknown.status_code, unknown.json()) == (405, {"detail": 'Method "POST" not allowed.'})


# -- out-of-band helpers ---------------------------------------------------------------------------------
async def test_out_of_band_edits_show_through_the_api(sandbox: AuthentikSandbox, client: httpx.AsyncClient) -> None:
    group = sandbox.add_group("drifty", {"tenant_id": "t1"})
    sandbox.update_group(group["pk"], attributes={"tenant_id": "t2"})
    fetched = (await client.get(f"{GROUPS}{group['pk']}/")).json()
    assert fetched["attributes"] == {"tenant_id": "t2"}
    with pytest.raises(ValueError, match="already exists"):
        sandbox.add_group("drifty")
    with pytest.raises(KeyError):
        sandbox.delete_group("0b0c3a4e-3b46-4f0a-9a4e-000000000000")


# -- fault controls and request log -----------------------------------------------------------------------
async def test_injected_fault_answers_twice_with_retry_after_then_the_api_answers(
    sandbox: AuthentikSandbox, client: httpx.AsyncClient
) -> None:
    sandbox.controls.fail(r"/core/groups/", 503, times=2, retry_after=7)
    statuses = []
    for _ in range(3):
        response = await client.get(GROUPS)
        statuses.append((response.status_code, response.headers.get("retry-after")))
    assert statuses == [(503, "7"), (503, "7"), (200, None)]


async def test_injected_fault_without_retry_after_sends_no_header(
    sandbox: AuthentikSandbox, client: httpx.AsyncClient
) -> None:
    sandbox.controls.fail(r"/core/groups/", 503, times=1)
    response = await client.get(GROUPS)
    assert response.status_code == 503
    assert "retry-after" not in response.headers


async def test_request_log_records_creates_with_status_and_redacted_token(
    sandbox: AuthentikSandbox, client: httpx.AsyncClient
) -> None:
    await client.post(GROUPS, json={"name": "logged", "attributes": {"tenant_id": "t1"}})
    await client.post(GROUPS, json={"name": "logged"})
    creates = sandbox.controls.requests("POST", r"/core/groups/$")
    assert [(r.body["name"], r.status) for r in creates] == [("logged", 201), ("logged", 400)]
    assert creates[0].headers["authorization"] == "<redacted>"
