"""Request bodies of the sandbox oCIS: the libre-graph-api-go structs Graph decodes them into, and its checks.

Sources: libre-graph-api-go @ fa3804be6c27 (the version oCIS pins; ``model_drive.go``,
``model_drive_update.go``, ``model_drive_item_invite.go``, ``model_permission.go``); Graph's
``CreateDrive``/``UpdateDrive``/``validateSpaceName`` (drives.go) and ``validate/libregraph.go``.

* POST /drives decodes a ``Drive``, whose ``UnmarshalJSON`` first requires the key ``name`` spelled exactly
  so; every other key, and ``name`` in the decode proper, matches case-insensitively. Any failure is
  ``invalidRequest`` "invalid body schema definition"; a bad name is ``invalidRequest`` "invalid spacename: …".
* PATCH decodes a ``DriveUpdate`` (no required key): a failure is ``invalidRequest`` "invalid request body:
  error: <Go's text>"; a bad name is ``generalException`` with the bare rule; an empty name is ignored.
* Invites and permission updates decode strictly too ("invalid request body"), then go-playground/validator
  rules report as "Key: 'DriveItemInvite.Recipients' Error:Field validation for 'Recipients' failed on the
  'min' tag" (several joined by newlines).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from tenantry.sandbox.ocis_errors import GraphError
from tenantry.sandbox.ocis_json import ArrayOf, GoJSONError, Struct, decode, object_keys, read_value
from tenantry.sandbox.ocis_model import SPACE_ROLES, rfc3339

QUOTA = Struct(
    "Quota", {"deleted": "int64", "remaining": "int64", "state": "string", "total": "int64", "used": "int64"}
)
_IDENTITY_SET = "object:libregraph.IdentitySet"
_DRIVE_FIELDS: dict[str, str | Struct | ArrayOf] = {
    "id": "string",
    "createdBy": _IDENTITY_SET,
    "createdDateTime": "time",
    "description": "string",
    "eTag": "string",
    "lastModifiedBy": _IDENTITY_SET,
    "lastModifiedDateTime": "time",
    "name": "string",
    "parentReference": "object:libregraph.ItemReference",
    "webUrl": "string",
    "driveType": "string",
    "driveAlias": "string",
    "owner": _IDENTITY_SET,
    "quota": QUOTA,
    "items": "array:[]libregraph.DriveItem",
    "root": "object:libregraph.DriveItem",
    "special": "array:[]libregraph.DriveItem",
}
DRIVE = Struct("Drive", _DRIVE_FIELDS)
DRIVE_UPDATE = Struct("DriveUpdate", _DRIVE_FIELDS)
RECIPIENT = Struct("DriveRecipient", {"objectId": "string", "@libre.graph.recipient.type": "string"})
INVITE = Struct(
    "DriveItemInvite",
    {
        "recipients": ArrayOf(RECIPIENT),
        "roles": "strings",
        "@libre.graph.permissions.actions": "strings",
        "expirationDateTime": "time",
    },
)
PERMISSION = Struct(
    "Permission",
    {
        "id": "string",
        "hasPassword": "bool",
        "expirationDateTime": "time",
        "createdDateTime": "time",
        "grantedToV2": "object:libregraph.SharePointIdentitySet",
        "link": "object:libregraph.SharingLink",
        "roles": "strings",
        "grantedToIdentities": "array:[]libregraph.IdentitySet",
        "@libre.graph.permissions.actions": "strings",
        "invitation": "object:libregraph.SharingInvitation",
    },
)

FORBIDDEN_NAME_CHARS = ("/", "\\", ".", ":", "?", "*", '"', ">", "<", "|")
MAX_NAME_BYTES = 255
TRUE_VALUES = frozenset({"1", "t", "T", "TRUE", "true", "True"})

# Every built-in unified role id (the validator accepts these; only the space roles apply to a space root).
BUILTIN_ROLE_IDS = frozenset(
    {
        "b1e2218d-eef8-4d4c-b82d-0f1a1b48f3b5",  # Viewer
        "d5041006-ebb3-4b4a-b6a4-7c180ecfb17d",  # Viewer (list grants)
        "fb6c3e19-e378-47e5-b277-9732f9de6e21",  # Editor
        "e8ea8b21-abd4-45d2-b893-8d1546378e9e",  # Editor (list grants)
        "3284f2d5-0070-4ad8-ac40-c247f7c1fb27",  # Space Editor without versions
        "2d00ce52-1fc2-4dbc-8b95-a73b73395f5a",  # File Editor
        "c1235aea-d106-42db-8458-7d5610fb0a67",  # File Editor (list grants)
        "1c996275-f1c9-4e71-abdf-a42f6495e960",  # Editor Lite
        "aa97fe03-7980-45ac-9e50-b325749fd7e6",  # Secure Viewer
        *SPACE_ROLES,
    }
)


def invalid(message: str) -> GraphError:
    return GraphError(400, "invalidRequest", message)


def space_name_problem(name: str) -> str | None:
    """``validateSpaceName`` on a trimmed name: the rule it breaks, or None."""
    if not name:
        return "spacename must not be empty"
    if len(name.encode()) > MAX_NAME_BYTES:
        return f"spacename must be smaller than {MAX_NAME_BYTES}"
    if any(ch in name for ch in FORBIDDEN_NAME_CHARS):
        return f"spacenames must not contain [{' '.join(FORBIDDEN_NAME_CHARS)}]"
    return None


def parse_create_body(raw: bytes) -> tuple[str, dict[str, Any]]:
    """A POST /drives body: the trimmed, valid name and the decoded fields."""
    try:
        keys = object_keys(read_value(raw))
        fields = decode(raw, DRIVE)
    except GoJSONError as err:
        raise invalid("invalid body schema definition") from err
    if keys is None or "name" not in keys:  # Drive.UnmarshalJSON: "no value given for required property name"
        raise invalid("invalid body schema definition")
    name = (fields.get("name") or "").strip()
    if (problem := space_name_problem(name)) is not None:
        raise invalid(f"invalid spacename: {problem}")
    return name, fields


def parse_update_body(raw: bytes) -> tuple[str | None, dict[str, Any]]:
    """A PATCH /drives/{id} body: the new trimmed name (None when not changed) and the decoded fields."""
    try:
        fields = decode(raw, DRIVE_UPDATE)
    except GoJSONError as err:
        raise invalid(f"invalid request body: error: {err.message}") from err
    raw_name = fields.get("name") or ""
    if not raw_name:
        return None, fields
    name = raw_name.strip()
    if (problem := space_name_problem(name)) is not None:
        raise GraphError(400, "generalException", problem)
    return name, fields


def requested_quota(fields: dict[str, Any]) -> int | None:
    quota = fields.get("quota")
    return quota.get("total") if isinstance(quota, dict) else None


@dataclass(frozen=True)
class Invite:
    recipient_type: Literal["user", "group"]
    object_id: str
    role: str
    expiration: str | None


def _rule(struct: str, field: str, tag: str) -> str:
    return f"Key: '{struct}.{field}' Error:Field validation for '{field}' failed on the '{tag}' tag"


def parse_invite_body(raw: bytes) -> Invite:
    """A space-root invite, decoded and validated as Graph does before it looks at the space."""
    try:
        fields = decode(raw, INVITE)
    except GoJSONError as err:
        raise invalid("invalid request body") from err
    recipients = fields.get("recipients") or []
    roles: list[str] = fields.get("roles") or []
    actions: list[str] = fields.get("@libre.graph.permissions.actions") or []
    expiration = fields.get("expirationDateTime")
    problems = []
    if not recipients:
        problems.append(_rule("DriveItemInvite", "Recipients", "min"))
    if len(roles) > 1:
        problems.append(_rule("DriveItemInvite", "Roles", "max"))
    if expiration is not None and _parse_time(expiration) <= datetime.now(UTC):
        problems.append(_rule("DriveItemInvite", "ExpirationDateTime", "gt"))
    if len(roles) == len(actions) or (roles and actions):
        problems.append(_rule("DriveItemInvite", "Roles", "one_or_another"))
        problems.append(_rule("DriveItemInvite", "LibreGraphPermissionsActions", "one_or_another"))
    problems += [_rule("DriveItemInvite", "Roles", "available_role") for r in roles if r not in BUILTIN_ROLE_IDS]
    if problems:
        raise invalid("\n".join(problems))
    if actions:
        # Custom actions on a space root are not modelled; the sandbox refuses rather than guess.
        raise invalid("custom actions are not supported by the sandbox on a space root")
    if roles[0] not in SPACE_ROLES:
        raise invalid("role not applicable to this resource")
    recipient = recipients[0]
    # Graph's switch knows "group"; any other type, or none, is looked up as a user.
    kind: Literal["user", "group"] = "group" if recipient.get("@libre.graph.recipient.type") == "group" else "user"
    return Invite(kind, recipient.get("objectId") or "", roles[0], _normalised(expiration))


@dataclass(frozen=True)
class PermissionUpdate:
    role: str | None
    expiration_sent: bool
    expiration: str | None


def parse_permission_body(raw: bytes) -> PermissionUpdate:
    """A space-root permission PATCH: a new role and/or expiration (``null`` clears it)."""
    try:
        fields = decode(raw, PERMISSION)
    except GoJSONError as err:
        raise invalid("invalid request body") from err
    roles: list[str] = fields.get("roles") or []
    sent = "expirationDateTime" in fields
    if not roles and not sent:
        raise invalid("invalid request body")
    if roles and roles[-1] not in SPACE_ROLES:
        raise invalid("role not applicable to this resource")
    expiration = fields.get("expirationDateTime")
    if expiration is not None and _parse_time(expiration) <= datetime.now(UTC):
        raise invalid("expiration date is in the past")
    return PermissionUpdate(roles[-1] if roles else None, sent, _normalised(expiration))


def parse_bool_header(value: str | None) -> bool:
    """Graph reads Purge/Restore headers as Go booleans; anything unparsable counts as false."""
    return value is not None and value.strip() in TRUE_VALUES


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))


def _normalised(text: str | None) -> str | None:
    return None if text is None else rfc3339(_parse_time(text).astimezone(UTC))
