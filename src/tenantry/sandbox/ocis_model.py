"""State and JSON shapes of the oCIS sandbox: spaces, their members, the space roles and quotas.

Shapes follow Graph's ``cs3StorageSpaceToDrive``/``getDriveQuota`` (services/graph/pkg/service/v0/drives.go)
over decomposedfs's ``StorageSpaceFromNode`` (reva ``pkg/storage/utils/decomposedfs/spaces.go``): a disabled
space keeps its name and description, shows ``root.deleted.state = "trashed"`` and only ``quota.total``; an
unlimited quota reads as ``total`` 0 with the free disk space as ``remaining``; an empty description or alias
is left out.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

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


# The default-enabled roles carrying the space-root condition (services/graph/pkg/unifiedrole/roles.go).
# v1.0 keeps calling Space Viewer "viewer" and Space Editor "editor" (its legacyNames map); the weight is
# the rank by number of actions, which is also the order in which each role includes the one before.
# "Space Editor without versions" exists upstream but is disabled by default, so it is refused like others.
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


def now() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def new_etag() -> str:
    return f'"{secrets.token_hex(16)}"'


def render_json(value: Any) -> bytes:
    """JSON as Starlette's JSONResponse writes it, so that rendered parts join into the same bytes."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()


@dataclass
class Grant:
    """One space membership: a user or group holding a space role, maybe until ``expiration``."""

    kind: Literal["user", "group"]
    object_id: str
    display_name: str
    role: str
    expiration: str | None = None

    @property
    def permission_id(self) -> str:
        return f"{self.kind[0]}:{self.object_id}"

    @property
    def permanent_manager(self) -> bool:
        return self.role == MANAGER and self.expiration is None

    def identity(self) -> dict[str, Any]:
        return {self.kind: {"id": self.object_id, "displayName": self.display_name}}

    def as_permission(self) -> dict[str, Any]:
        """The v1beta1 shape: unified role id and ``grantedToV2``."""
        out: dict[str, Any] = {"id": self.permission_id, "roles": [self.role], "grantedToV2": self.identity()}
        if self.expiration is not None:
            out["expirationDateTime"] = self.expiration
        return out

    def as_invited(self, inviter: dict[str, str]) -> dict[str, Any]:
        """What an invite answers: the permission, the member's user type and who invited them."""
        out = self.as_permission()
        if self.kind == "user":
            out["grantedToV2"]["user"]["@libre.graph.userType"] = "Member"
        out["invitation"] = {"invitedBy": {"user": inviter}}
        return out

    def as_legacy_permission(self) -> dict[str, Any]:
        """The v1.0 drive-root shape: legacy role name and ``grantedToIdentities``."""
        out: dict[str, Any] = {
            "grantedToIdentities": [self.identity()],
            "roles": [SPACE_ROLES[self.role].legacy_name],
        }
        if self.expiration is not None:
            out["expirationDateTime"] = self.expiration
        return out


@dataclass
class Space:
    """One storage space as the sandbox keeps it; ``quota`` is the stored value, negative meaning unlimited.

    Its drive JSON is rendered once and kept until a field is set; a change inside ``grants`` is followed
    by :meth:`touch`, which sets two.
    """

    space_id: str
    name: str
    drive_type: str
    alias: str
    quota: int
    description: str | None = None
    used: int = 0
    disabled: bool = False
    modified: datetime = field(default_factory=now)
    etag: str = field(default_factory=new_etag)
    grants: dict[str, Grant] = field(default_factory=dict)
    _rendered: dict[tuple[str, bool, int], bytes] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __setattr__(self, name: str, value: Any) -> None:
        if name != "_rendered" and "_rendered" in self.__dict__:
            self._rendered.clear()  # whatever was rendered before the change is stale
        object.__setattr__(self, name, value)

    @property
    def drive_id(self) -> str:
        return f"{STORAGE_ID}${self.space_id}"

    def touch(self) -> None:
        self.modified = now()
        self.etag = new_etag()

    def role_of(self, user_id: str) -> str | None:
        """The space role a user holds directly (the sandbox keeps no group memberships of users)."""
        grant = self.grants.get(f"u:{user_id}")
        return None if grant is None else grant.role

    def is_manager(self, user_id: str) -> bool:
        return self.role_of(user_id) == MANAGER

    def listed_for(self, user_id: str) -> bool:
        """Whether a member sees the space: always while enabled, only as a manager once disabled."""
        role = self.role_of(user_id)
        return role is not None and (not self.disabled or role == MANAGER)

    def rendered(self, public_url: str, *, unified_roles: bool, free_bytes: int) -> bytes:
        """:meth:`as_drive` as JSON bytes, rendered again only after the space changed."""
        key = (public_url, unified_roles, free_bytes)
        body = self._rendered.get(key)
        if body is None:
            body = self._rendered[key] = render_json(
                self.as_drive(public_url, unified_roles=unified_roles, free_bytes=free_bytes)
            )
        return body

    def as_drive(self, public_url: str, *, unified_roles: bool = False, free_bytes: int = 0) -> dict[str, Any]:
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
            # Graph skips the quota lookup of a disabled space: only the stored limit is left.
            quota: dict[str, Any] = {"total": self.quota} if self.quota >= 0 else {}
        else:
            quota = quota_json(max(self.quota, 0), self.used, free_bytes)
        drive: dict[str, Any] = {
            "id": drive_id,
            "name": self.name,
            "driveType": self.drive_type,
            # A project space is owned by a placeholder user whose id is the space id.
            "owner": {"user": {"id": self.space_id, "displayName": ""}},
            "quota": quota,
            "root": root,
            "webUrl": f"{public_url}/f/{drive_id}",
            "lastModifiedDateTime": rfc3339(self.modified),
        }
        if self.alias:
            drive["driveAlias"] = self.alias
        if self.description:
            drive["description"] = self.description
        return drive


def quota_json(total: int, used: int, free_bytes: int) -> dict[str, Any]:
    """``getDriveQuota``: ``total`` 0 is unlimited, then ``remaining`` is the free disk space."""
    remaining = max(total - used, 0) if total > 0 else free_bytes
    return {"total": total, "used": used, "remaining": remaining, "state": quota_state(total or remaining, used)}


def quota_state(total: int, used: int) -> str:
    """``calculateQuotaState``: the percentage used against 75, 90 and 99, each bound included."""
    if total <= 0:
        return "exceeded"  # Go divides by zero here; NaN and +Inf fail every comparison
    percent = used / total * 100
    if percent <= 75:
        return "normal"
    if percent <= 90:
        return "nearing"
    if percent <= 99:
        return "critical"
    return "exceeded"


def default_alias(drive_type: str, name: str) -> str:
    """decomposedfs's default alias template: ``{{.SpaceType}}/{{.SpaceName | replace " " "-" | lower}}``."""
    return f"{drive_type}/{name.replace(' ', '-').lower()}"
