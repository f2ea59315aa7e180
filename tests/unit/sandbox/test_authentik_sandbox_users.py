"""The authentik sandbox's /core/users/{id}/: the lookups, permissions and validation authentik applies."""

from __future__ import annotations

import httpx

from tenantry.sandbox.authentik import AuthentikSandbox

TOKEN = "sandbox-api-token"
LIMITED = "may-view-users"
NO_PERMISSION = {"detail": "You do not have permission to perform this action."}


def client(sandbox: AuthentikSandbox, token: str = TOKEN) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(sandbox.app),
        base_url="http://authentik.test/api/v3/core/users/",
        headers={"Authorization": f"Bearer {token}"},
    )


async def test_a_user_is_read_changed_and_deleted_with_the_answers_authentik_gives() -> None:
    sandbox = AuthentikSandbox([TOKEN])
    pk = sandbox.add_user("alice", attributes={"managed_by": "tenantry"})
    async with client(sandbox) as http:
        shown = (await http.get(f"{pk}/")).json()
        assert (shown["username"], shown["is_active"], shown["attributes"]) == (
            "alice",
            True,
            {"managed_by": "tenantry"},
        )
        changed = await http.patch(f"{pk}/", json={"is_active": False, "attributes": {"x": 1}})
        assert changed.status_code == 200
        assert (changed.json()["is_active"], changed.json()["attributes"]) == (False, {"x": 1})
        bad = await http.patch(f"{pk}/", json={"is_active": "no", "attributes": []})
        assert bad.status_code == 400
        assert bad.json() == {
            "is_active": ["Must be a valid boolean."],
            "attributes": ["Value must be a dictionary, and not have any duplicate keys."],
        }
        assert (await http.put(f"{pk}/", json={"name": "A"})).json() == {"username": ["This field is required."]}
        assert (await http.get("999/")).json() == {"detail": "No User matches the given query."}
        assert (await http.get("abc/")).json() == {"detail": "Not found."}
        assert (await http.delete(f"{pk}/")).status_code == 204
        assert (await http.get(f"{pk}/")).status_code == 404


async def test_changing_a_user_needs_the_change_permission() -> None:
    sandbox = AuthentikSandbox([TOKEN], permissions={LIMITED: {"authentik_core.view_user"}})
    pk = sandbox.add_user("alice")
    async with client(sandbox, LIMITED) as http:
        assert (await http.get(f"{pk}/")).status_code == 200
        refused = await http.patch(f"{pk}/", json={"is_active": False})
        assert (refused.status_code, refused.json()) == (403, NO_PERMISSION)
    assert sandbox.user(pk)["is_active"] is True
