"""State, request validation, JSON shapes and error answers of the oCIS sandbox (spaces, grants, roles)."""

from __future__ import annotations

import json
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

STORAGE_ID = "storage-users-1"

SPACE_VIEWER = "a8d5fe5e-96e3-418d-825b-534dbdf22b99"
SPACE_EDITOR = "58c63c02-1d89-4572-916a-870abc5a1b7d"
MANAGER = "312c0871-5ef7-4b3a-85b6-0e4074c64049"


@dataclass(frozen=True)
class SpaceRole:
    """A unified role applicable to a space root, with the legacy name v1.0 drive listings show."""

    id: str
    display_name: str
    description: str
    legacy_name: str
    weight: int

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "displayName": self.display_name,
            "description": self.description,
            "@libre.graph.weight": self.weight,
        }


# Only the default-enabled roles carrying the space-root condition; "Space Editor without versions"
# exists upstream but is disabled by default, so an invite naming it is refused like any other.
SPACE_ROLES: dict[str, SpaceRole] = {
    role.id: role
    for role in (
        SpaceRole(SPACE_VIEWER, "Can view", "View and download.", "viewer", 1),
        SpaceRole(SPACE_EDITOR, "Can edit", "View, download, upload, edit, add and delete.", "editor", 2),
        SpaceRole(MANAGER, "Can manage", "View, download, upload, edit, add, delete and manage members.", "manager", 3),
    )
}

ALLOWED_ACTIONS: tuple[str, ...] = tuple(
    f"libre.graph/driveItem/{action}"
    for action in (
        "basic/read",
        "quota/read",
        "path/read",
        "path/update",
        "standard/delete",
        "children/read",
        "children/create",
        "content/read",
        "upload/create",
        "permissions/create",
        "permissions/read",
        "permissions/update",
        "permissions/delete",
        "permissions/deny",
        "versions/read",
        "versions/update",
        "deleted/read",
        "deleted/update",
        "deleted/delete",
    )
)

# Every property of the LibreGraph driveUpdate/drive schemas: strict parsing rejects anything else.
DRIVE_FIELDS = frozenset(
    {
        "id",
        "createdBy",
        "createdDateTime",
        "description",
        "eTag",
        "lastModifiedBy",
        "lastModifiedDateTime",
        "name",
        "parentReference",
        "webUrl",
        "driveType",
        "driveAlias",
        "owner",
        "quota",
        "items",
        "root",
        "special",
    }
)
QUOTA_FIELDS = frozenset({"deleted", "remaining", "state", "total", "used"})
FORBIDDEN_NAME_CHARS = '/\\.:?*"><|'
MAX_NAME_LENGTH = 255
TRUE_VALUES = frozenset({"1", "t", "T", "TRUE", "true", "True"})


class GraphError(Exception):
    """An OData error answer: HTTP status, LibreGraph error code and a human message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class UnauthorizedError(Exception):
    """Missing or rejected credentials: answered as the proxy does, 401 with no body."""


def invalid_body() -> GraphError:
    return GraphError(400, "invalidRequest", "invalid body schema definition")


def drive_not_found() -> GraphError:
    return GraphError(404, "itemNotFound", "drive not found")


def now() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def new_etag() -> str:
    return f'"{secrets.token_hex(16)}"'


@dataclass
class Grant:
    """One space membership: a user or group holding a space role."""

    kind: Literal["user", "group"]
    object_id: str
    display_name: str
    role: str
    expiration: str | None = None

    @property
    def permission_id(self) -> str:
        return f"{self.kind[0]}:{self.object_id}"

    def identity(self) -> dict[str, Any]:
        return {self.kind: {"id": self.object_id, "displayName": self.display_name}}

    def as_permission(self) -> dict[str, Any]:
        """The v1beta1 shape: unified role id and ``grantedToV2``."""
        out: dict[str, Any] = {"id": self.permission_id, "roles": [self.role], "grantedToV2": self.identity()}
        if self.expiration is not None:
            out["expirationDateTime"] = self.expiration
        return out

    def as_legacy_permission(self) -> dict[str, Any]:
        """The v1.0 drive-root shape: legacy role name and ``grantedToIdentities``."""
        return {"grantedToIdentities": [self.identity()], "roles": [SPACE_ROLES[self.role].legacy_name]}


@dataclass
class Space:
    """One storage space as the sandbox keeps it."""

    space_id: str
    name: str
    drive_type: str
    alias: str
    quota_total: int
    description: str | None = None
    used: int = 0
    disabled: bool = False
    modified: datetime = field(default_factory=now)
    etag: str = field(default_factory=new_etag)
    grants: dict[str, Grant] = field(default_factory=dict)

    @property
    def drive_id(self) -> str:
        return f"{STORAGE_ID}${self.space_id}"

    def touch(self) -> None:
        self.modified = now()
        self.etag = new_etag()

    def as_drive(self, public_url: str, *, unified_roles: bool = False) -> dict[str, Any]:
        drive_id = self.drive_id
        grants = list(self.grants.values())
        root: dict[str, Any] = {
            "id": drive_id,
            "eTag": self.etag,
            "webDavUrl": f"{public_url}/dav/spaces/{drive_id}",
            "permissions": [g.as_permission() if unified_roles else g.as_legacy_permission() for g in grants],
        }
        if self.disabled:
            root["deleted"] = {"state": "trashed"}
        drive: dict[str, Any] = {
            "id": drive_id,
            "name": self.name,
            "driveType": self.drive_type,
            "driveAlias": self.alias,
            # A project space is owned by a placeholder user whose id is the space id.
            "owner": {"user": {"id": self.space_id, "displayName": ""}},
            "quota": quota_json(self.quota_total, self.used),
            "root": root,
            "webUrl": f"{public_url}/f/{drive_id}",
            "lastModifiedDateTime": rfc3339(self.modified),
        }
        # A disabled space's description cannot be read any more.
        if self.description is not None and not self.disabled:
            drive["description"] = self.description
        return drive


def quota_json(total: int, used: int) -> dict[str, Any]:
    remaining = max(total - used, 0)
    return {"total": total, "used": used, "remaining": remaining, "state": quota_state(total, used)}


def quota_state(total: int, used: int) -> str:
    if total <= 0:
        return "normal"
    ratio = used / total
    if ratio < 0.75:
        return "normal"
    if ratio < 0.9:
        return "nearing"
    if ratio < 1.0:
        return "critical"
    return "exceeded"


def default_alias(drive_type: str, name: str) -> str:
    return f"{drive_type}/{'-'.join(name.lower().split())}"


def validate_space_name(raw: Any) -> str:
    """The trimmed name, or a 400 naming the rule it breaks."""
    if not isinstance(raw, str):
        raise invalid_body()
    name = raw.strip()
    if not name:
        raise GraphError(400, "invalidRequest", "invalid spacename: spacename must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise GraphError(
            400, "invalidRequest", f"invalid spacename: spacename must be at most {MAX_NAME_LENGTH} characters"
        )
    if any(ch in FORBIDDEN_NAME_CHARS for ch in name):
        listed = " ".join(FORBIDDEN_NAME_CHARS)
        raise GraphError(400, "invalidRequest", f"invalid spacename: spacenames must not contain any of {listed}")
    return name


def parse_json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError as err:
        raise invalid_body() from err
    if not isinstance(body, dict):
        raise invalid_body()
    return body


def parse_drive_body(raw: bytes) -> dict[str, Any]:
    """A drive/driveUpdate body parsed strictly: unknown or mistyped fields are a 400."""
    body = parse_json_object(raw)
    if set(body) - DRIVE_FIELDS:
        raise invalid_body()
    for key in ("name", "description", "driveAlias", "driveType"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise invalid_body()
    quota = body.get("quota")
    if quota is not None:
        if not isinstance(quota, dict) or set(quota) - QUOTA_FIELDS:
            raise invalid_body()
        total = quota.get("total")
        if total is not None and (isinstance(total, bool) or not isinstance(total, int)):
            raise invalid_body()
    return {k: v for k, v in body.items() if v is not None}


def requested_quota(body: dict[str, Any]) -> int | None:
    quota = body.get("quota")
    if not isinstance(quota, dict):
        return None
    total = quota.get("total")
    return total if isinstance(total, int) else None


_SINGLE_EQ = re.compile(r"^\s*([A-Za-z][\w@/.]*)\s+eq\s+'((?:[^']|'')*)'\s*$")
_ORDER_BY = re.compile(r"^\s*(name|lastModifiedDateTime)(?:\s+(asc|desc))?\s*$")


def parse_drive_filter(expression: str | None) -> tuple[str, str] | None:
    """The ``(property, value)`` of a single ``eq`` on driveType or id; None when nothing is to filter.

    An ``eq`` on any other property is ignored upstream (the full list comes back), every other
    expression is refused as not supported.
    """
    if expression is None or not expression.strip():
        return None
    match = _SINGLE_EQ.match(expression)
    if match is None:
        raise GraphError(501, "notSupported", "unsupported filter, only a single 'eq' is supported")
    prop, value = match.group(1), match.group(2).replace("''", "'")
    return (prop, value) if prop in {"driveType", "id"} else None


def parse_order_by(expression: str | None) -> tuple[str, bool] | None:
    """``(property, descending)`` for a supported ``$orderby``; a 400 for any other."""
    if expression is None:
        return None
    match = _ORDER_BY.match(expression)
    if match is None:
        raise GraphError(400, "invalidRequest", f"we do not support <{expression}> as a order parameter")
    return match.group(1), match.group(2) == "desc"


def parse_bool_header(value: str | None) -> bool:
    """Upstream reads Purge/Restore headers as Go booleans; anything unparsable counts as false."""
    return value is not None and value.strip() in TRUE_VALUES


def parse_expiration(raw: Any) -> str | None:
    """A future RFC 3339 expiration, normalised; None when absent; 400 when invalid or past."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise invalid_body()
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError as err:
        raise GraphError(400, "invalidRequest", "expirationDateTime is not a valid date") from err
    if moment.tzinfo is None or moment <= now():
        raise GraphError(400, "invalidRequest", "expirationDateTime must be in the future")
    return rfc3339(moment.astimezone(UTC))


def parse_single_role(roles: Any) -> str:
    """The one space role id a request names; a 400 when missing, several, or not a space role."""
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise invalid_body()
    if len(roles) != 1:
        raise GraphError(400, "invalidRequest", "exactly one role must be given")
    if roles[0] not in SPACE_ROLES:
        raise GraphError(400, "invalidRequest", "role not applicable to this resource")
    return str(roles[0])


def odata_error(status: int, code: str, message: str) -> JSONResponse:
    """The LibreGraph error body every non-401 failure carries."""
    body = {
        "error": {
            "code": code,
            "message": message,
            "innererror": {"date": rfc3339(now()), "request-id": str(uuid.uuid4())},
        }
    }
    return JSONResponse(body, status_code=status)


async def graph_error_response(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GraphError)
    return odata_error(exc.status, exc.code, exc.message)


async def unauthorized_response(_request: Request, _exc: Exception) -> Response:
    return Response(status_code=401)


async def http_error_response(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "itemNotFound", 405: "notAllowed"}.get(exc.status_code, "generalException")
    return odata_error(exc.status_code, code, exc.detail)
