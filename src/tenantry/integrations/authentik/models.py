"""Typed views of the authentik API payloads the client reads; only the fields we use, the rest ignored."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    # Newer authentik releases add fields freely; ignoring them keeps one client working across versions.
    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)


class Group(_Model):
    """A group (``/core/groups/``); ``pk`` is its UUID, the id every other call addresses it by."""

    pk: str
    name: str
    is_superuser: bool = False
    attributes: dict[str, Any] = Field(default_factory=dict)


class Member(_Model):
    """A user as a group lists it (``PartialUser``) or ``/core/users/{id}/`` answers it: the fields we use."""

    pk: int
    username: str
    is_active: bool = True
    attributes: dict[str, Any] = Field(default_factory=dict)


class GroupMembers(_Model):
    """A group read with its members."""

    users_obj: list[Member] | None = None


class Pagination(_Model):
    """authentik's page cursor: ``next`` is a page number, ``0`` when there is none."""

    # The schema types these as JSON numbers, so floats are accepted and truncated by the caller.
    next: float = 0
    current: float = 1
    count: float = 0


class GroupPage(_Model):
    """One page of ``GET /core/groups/``."""

    pagination: Pagination
    results: list[Group]
