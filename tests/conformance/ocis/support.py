"""Paths, role ids and error reading shared by the oCIS conformance tests."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

# Unified role ids (services/graph/pkg/unifiedrole/roles.go).
SPACE_VIEWER = "a8d5fe5e-96e3-418d-825b-534dbdf22b99"
SPACE_EDITOR = "58c63c02-1d89-4572-916a-870abc5a1b7d"
MANAGER = "312c0871-5ef7-4b3a-85b6-0e4074c64049"
FILE_VIEWER = "b1e2218d-eef8-4d4c-b82d-0f1a1b48f3b5"  # a role for files and folders, not for space roots
ROLES_KEY = "@libre.graph.permissions.roles.allowedValues"


def drive_path(drive_id: str) -> str:
    return f"/graph/v1.0/drives/{quote(drive_id, safe='')}"


def root_path(drive_id: str) -> str:
    return f"/graph/v1beta1/drives/{quote(drive_id, safe='')}/root"


def error(response: httpx.Response) -> tuple[int, str, str]:
    """``(status, code, message)`` of a Graph error answer."""
    body = response.json()["error"]
    return response.status_code, body["code"], body["message"]


def ids(response: httpx.Response) -> list[str]:
    """The drive ids of a listing (an empty listing may be a JSON null)."""
    assert response.status_code == 200, response.text
    body: Any = response.json()
    return [d["id"] for d in (body or {}).get("value") or []]


def invite(object_id: str, role: str, recipient_type: str = "user") -> dict[str, Any]:
    return {
        "recipients": [{"@libre.graph.recipient.type": recipient_type, "objectId": object_id}],
        "roles": [role],
    }
