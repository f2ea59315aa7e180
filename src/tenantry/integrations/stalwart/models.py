"""Typed models of the Stalwart JMAP objects Tenantry reads and writes, in Stalwart's wire encodings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    TypeAdapter,
)
from pydantic.alias_generators import to_camel

T = TypeVar("T")

# --- Stalwart's collection encodings -------------------------------------------------------------------
# Stalwart never sends JSON arrays for collections: a set is {"value": true, ...} and an ordered list of
# objects is {"0": {...}, "1": {...}}; false/null set entries mean "absent".


def to_set_map(values: Iterable[str]) -> dict[str, bool]:
    """A Python set as Stalwart's ``{"value": true}`` map (sorted, so payloads are stable)."""
    return dict.fromkeys(sorted(values), True)


def from_set_map(value: Mapping[str, Any] | Iterable[str] | None) -> frozenset[str]:
    """Stalwart's ``{"value": true}`` map as a frozenset; false/null entries are dropped, as upstream does."""
    if value is None:
        return frozenset()
    if isinstance(value, Mapping):
        return frozenset(str(k) for k, v in value.items() if v)
    if isinstance(value, str):
        # ValueError, not TypeError: pydantic turns only ValueError into a ValidationError.
        raise ValueError("a Stalwart set is a JSON object, not a string")  # noqa: TRY004
    return frozenset(value)


def to_list_map(items: Sequence[T]) -> dict[str, T]:
    """A Python list as Stalwart's ``{"0": ..., "1": ...}`` map."""
    return {str(index): item for index, item in enumerate(items)}


def from_list_map(value: Mapping[str, T] | Sequence[T] | None) -> list[T]:
    """Stalwart's ``{"0": ...}`` map as a list ordered by its numeric keys (a plain list passes through)."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        try:
            keys = sorted(value, key=int)
        except ValueError as err:
            raise ValueError("a Stalwart list has numeric keys") from err
        return [value[key] for key in keys]
    if isinstance(value, str):
        raise ValueError("a Stalwart list is a JSON object, not a string")  # noqa: TRY004
    return list(value)


def duration_to_ms(duration: timedelta) -> int:
    """Stalwart durations are integer milliseconds."""
    return int(duration / timedelta(milliseconds=1))


def ms_to_duration(ms: int) -> timedelta:
    return timedelta(milliseconds=ms)


StalwartSet = Annotated[
    frozenset[str],
    BeforeValidator(from_set_map),
    PlainSerializer(to_set_map, return_type=dict[str, bool]),
]
"""A set property: a frozenset in Python, ``{"value": true}`` on the wire."""


class StalwartModel(BaseModel):
    """Base of every wire model: camelCase on the wire, unknown properties ignored, immutable."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)

    def to_wire(self) -> dict[str, Any]:
        """The JSON object to send: aliases, Stalwart encodings, and only the fields that were set."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class Variant(StalwartModel):
    """A tagged value such as ``{"@type": "Automatic"}``; variant-specific properties are not read."""

    type_: str = Field(alias="@type")

    def to_wire(self) -> dict[str, Any]:
        # The tag must always be sent, even when it was left at a subclass default.
        return {"@type": self.type_, **super().to_wire()}


class DkimManagement(Variant):
    """``Automatic`` (the default: Stalwart generates and rotates keys) or ``Manual``."""

    type_: Literal["Automatic", "Manual"] = Field(default="Automatic", alias="@type")


class EmailAlias(StalwartModel):
    """An extra address of an account (``name`` is the local part)."""

    name: str
    domain_id: str
    enabled: bool = True
    description: str | None = None


def _alias_list(value: Any) -> list[Any]:
    return from_list_map(value)


def _alias_map(items: list[EmailAlias]) -> dict[str, dict[str, Any]]:
    return to_list_map([item.model_dump(mode="json", by_alias=True, exclude_none=True) for item in items])


AliasList = Annotated[
    list[EmailAlias],
    BeforeValidator(_alias_list),
    PlainSerializer(_alias_map, return_type=dict[str, dict[str, Any]]),
]
"""An objectList of aliases: a list in Python, ``{"0": {...}}`` on the wire."""


# --- x:Domain ---------------------------------------------------------------------------------------------


class Domain(StalwartModel):
    """An ``x:Domain`` as read. ``dns_zone_file`` is only present when asked for (Stalwart computes it)."""

    id: str
    name: str
    aliases: StalwartSet = frozenset()
    is_enabled: bool = True
    description: str | None = None
    dkim_management: DkimManagement | None = None
    dns_zone_file: str | None = None


DOMAIN_PROPERTIES: tuple[str, ...] = ("id", "name", "aliases", "isEnabled", "description", "dkimManagement")
"""What ``get_domains`` asks for by default: everything we read except the costly ``dnsZoneFile``."""


class DomainCreate(StalwartModel):
    """The body of an ``x:Domain/set`` create; unset fields take Stalwart's defaults (DKIM Automatic)."""

    name: str
    description: str | None = None
    aliases: StalwartSet | None = None
    is_enabled: bool | None = None
    dkim_management: DkimManagement | None = None

    def to_wire(self) -> dict[str, Any]:
        body = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        if self.dkim_management is not None:
            body["dkimManagement"] = self.dkim_management.to_wire()
        return body


class DomainUpdate(StalwartModel):
    """An ``x:Domain/set`` update: only the fields given are sent; ``description=None`` clears it."""

    name: str | None = None
    description: str | None = None
    aliases: StalwartSet | None = None
    is_enabled: bool | None = None
    dkim_management: DkimManagement | None = None

    def to_wire(self) -> dict[str, Any]:
        body = super().to_wire()
        if self.dkim_management is not None:
            body["dkimManagement"] = self.dkim_management.to_wire()
        return body


# --- x:Account (User | Group) -----------------------------------------------------------------------------


class _AccountBase(StalwartModel):
    id: str
    name: str
    domain_id: str
    email_address: str | None = None
    description: str | None = None
    aliases: AliasList = Field(default_factory=list)
    quotas: dict[str, int] = Field(default_factory=dict)
    used_disk_quota: int | None = None


class UserAccount(_AccountBase):
    """An ``x:Account`` of ``@type`` User (a mailbox that can log in)."""

    type_: Literal["User"] = Field(alias="@type")
    member_group_ids: StalwartSet = frozenset()


class GroupAccount(_AccountBase):
    """An ``x:Account`` of ``@type`` Group (a shared mailbox users join via ``memberGroupIds``)."""

    type_: Literal["Group"] = Field(alias="@type")


Account = Annotated[UserAccount | GroupAccount, Field(discriminator="type_")]
ACCOUNTS: TypeAdapter[list[Account]] = TypeAdapter(list[Account])

ACCOUNT_PROPERTIES: tuple[str, ...] = (
    "id",
    "@type",
    "name",
    "domainId",
    "emailAddress",
    "description",
    "aliases",
    "quotas",
    "usedDiskQuota",
    "memberGroupIds",
)


class UserCreate(StalwartModel):
    """The body of an ``x:Account/set`` create for a User; ``password`` becomes its Password credential."""

    type_: Literal["User"] = Field(default="User", alias="@type")
    name: str
    domain_id: str
    description: str | None = None
    password: SecretStr | None = Field(default=None, exclude=True)
    aliases: AliasList | None = None
    member_group_ids: StalwartSet | None = None
    quotas: dict[str, int] | None = None

    def to_wire(self) -> dict[str, Any]:
        body = {"@type": self.type_, **self.model_dump(mode="json", by_alias=True, exclude_none=True)}
        if self.password is not None:
            secret = self.password.get_secret_value()
            body["credentials"] = to_list_map([{"@type": "Password", "secret": secret}])
        return body


class GroupCreate(StalwartModel):
    """The body of an ``x:Account/set`` create for a Group."""

    type_: Literal["Group"] = Field(default="Group", alias="@type")
    name: str
    domain_id: str
    description: str | None = None
    aliases: AliasList | None = None
    quotas: dict[str, int] | None = None

    def to_wire(self) -> dict[str, Any]:
        return {"@type": self.type_, **self.model_dump(mode="json", by_alias=True, exclude_none=True)}


AccountCreate = UserCreate | GroupCreate


class AccountUpdate(StalwartModel):
    """An ``x:Account/set`` update: only the fields given are sent (whole-property replacement)."""

    description: str | None = None
    aliases: AliasList | None = None
    member_group_ids: StalwartSet | None = None
    quotas: dict[str, int] | None = None


# --- x:DkimSignature --------------------------------------------------------------------------------------


class DkimSignature(StalwartModel):
    """An ``x:DkimSignature`` as read (``@type`` names the algorithm, e.g. ``Dkim1Ed25519Sha256``)."""

    id: str
    type_: str = Field(alias="@type")
    domain_id: str
    selector: str
    stage: str = "active"
    public_key: str | None = None


DKIM_PROPERTIES: tuple[str, ...] = ("id", "@type", "domainId", "selector", "stage", "publicKey")

# --- JMAP session -----------------------------------------------------------------------------------------


class Session(StalwartModel):
    """The parts of the JMAP session resource the client needs."""

    api_url: str
    primary_accounts: dict[str, str] = Field(default_factory=dict)
    username: str | None = None
