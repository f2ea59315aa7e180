"""Typed views of the LibreGraph payloads the client reads: drives (spaces) and their permissions."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# A disabled space keeps being listed, marked with this root.deleted.state.
DISABLED_STATE = "trashed"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class Quota(_Model):
    """A drive's quota in bytes; ``state`` is normal, nearing, critical or exceeded."""

    total: int | None = None
    used: int | None = None
    remaining: int | None = None
    state: str | None = None


class Drive(_Model):
    """A space. ``disabled`` is derived from ``root.deleted.state`` (a disabled space is still listed)."""

    id: str
    name: str
    drive_type: str | None = Field(default=None, alias="driveType")
    drive_alias: str | None = Field(default=None, alias="driveAlias")
    description: str | None = None
    quota: Quota | None = None
    web_url: str | None = Field(default=None, alias="webUrl")
    created_at: datetime | None = Field(default=None, alias="createdDateTime")
    disabled: bool = False

    @model_validator(mode="before")
    @classmethod
    def _disabled_from_root(cls, data: Any) -> Any:
        if isinstance(data, dict) and "root" in data:
            root = data.get("root")
            deleted = root.get("deleted") if isinstance(root, dict) else None
            state = deleted.get("state") if isinstance(deleted, dict) else None
            data = {**data, "disabled": state == DISABLED_STATE}
        return data

    @property
    def quota_total(self) -> int | None:
        """The quota in bytes, if oCIS reported one."""
        return self.quota.total if self.quota is not None else None


class User(_Model):
    """The signed-in user (``GET /v1.0/me``): who the service identity is in oCIS."""

    id: str
    display_name: str | None = Field(default=None, alias="displayName")
    username: str | None = Field(default=None, alias="onPremisesSamAccountName")


class IdentityRef(_Model):
    """A user or group a permission is granted to."""

    id: str | None = None
    display_name: str | None = Field(default=None, alias="displayName")


class GrantedTo(_Model):
    """``grantedToV2``: exactly one of user or group is set for a membership."""

    user: IdentityRef | None = None
    group: IdentityRef | None = None


class Permission(_Model):
    """A sharing permission on a space root (a member and its role)."""

    id: str
    roles: list[str] = Field(default_factory=list)
    granted_to: GrantedTo | None = Field(default=None, alias="grantedToV2")
    expires_at: datetime | None = Field(default=None, alias="expirationDateTime")

    @property
    def recipient_type(self) -> Literal["user", "group"] | None:
        """Whether the permission is granted to a user or a group."""
        if self.granted_to is None:
            return None
        if self.granted_to.user is not None:
            return "user"
        if self.granted_to.group is not None:
            return "group"
        return None

    @property
    def object_id(self) -> str | None:
        """The oCIS id of the user or group the permission is granted to."""
        if self.granted_to is None:
            return None
        identity = self.granted_to.user or self.granted_to.group
        return identity.id if identity is not None else None

    @property
    def role_id(self) -> str | None:
        """The (single) unified role id, if the permission uses a role rather than custom actions."""
        return self.roles[0] if self.roles else None
