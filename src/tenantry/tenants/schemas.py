"""API input and output shapes (camelCase on the wire, as the original service spoke)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator
from pydantic.alias_generators import to_camel

from tenantry.hostnames import normalise_hostname
from tenantry.integrations.dns import Purpose
from tenantry.states import DomainProof, DomainStatus, StepName, StepStatus, TenantStatus

MAX_QUOTA_BYTES = 2**53  # 8 PiB; also the largest integer a JSON number carries exactly
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$")
# The slug as the OpenAPI document states it: SLUG_RE, and no "??--" label (IDNA reserves those).
SLUG_PATTERN = r"^(?![a-z0-9]{2}--)[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$"

# Characters that do not show but change what is shown, as inclusive code point ranges: controls (Cc),
# format characters such as bidirectional overrides, isolates and zero-width ones (Cf), surrogates (Cs),
# private use (Co), line and paragraph separators (Zl, Zp), and the noncharacters. Unassigned code points
# are not among them: a character newer than this Python's Unicode tables (a new emoji) is allowed.
# A unit test holds this table to unicodedata's categories.
# fmt: off
HIDDEN_RANGES: tuple[tuple[int, int], ...] = (
    (0x0000, 0x001F), (0x007F, 0x009F), (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C),
    (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2), (0x180E, 0x180E),
    (0x200B, 0x200F), (0x2028, 0x202E), (0x2060, 0x2064), (0x2066, 0x206F), (0xD800, 0xF8FF),
    (0xFDD0, 0xFDEF), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0xFFFE, 0xFFFF), (0x110BD, 0x110BD),
    (0x110CD, 0x110CD), (0x13430, 0x1343F), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001),
    (0xE0020, 0xE007F), (0xF0000, 0x10FFFF),
    *((plane << 16 | 0xFFFE, plane << 16 | 0xFFFF) for plane in range(1, 15)),
)
# fmt: on


def _char_class(ranges: tuple[tuple[int, int], ...]) -> str:
    """The body of a regex character class of ``ranges``: BMP code points as \\uXXXX escapes (surrogates
    cannot be written otherwise), the others as themselves."""

    def one(cp: int) -> str:
        return f"\\u{cp:04x}" if cp <= 0xFFFF else chr(cp)

    return "".join(one(a) if a == b else f"{one(a)}-{one(b)}" for a, b in ranges)


_HIDDEN = _char_class(HIDDEN_RANGES)
HIDDEN_RE = re.compile(f"[{_HIDDEN}]")
# A display name as the OpenAPI document states it and clean_display_name enforces: no hidden character,
# and not blank.
DISPLAY_NAME_PATTERN = rf"^[^{_HIDDEN}]*[^\s{_HIDDEN}][^{_HIDDEN}]*$"


def clean_display_name(value: str) -> str:
    """A tenant's display name: no control or invisible formatting characters (not even at either end,
    as DISPLAY_NAME_PATTERN says), not blank, trimmed."""
    hidden = HIDDEN_RE.findall(value)
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in hidden):
        raise ValueError("must not contain control characters")
    if hidden:
        shown = ", ".join(f"U+{ord(ch):04X}" for ch in dict.fromkeys(hidden))
        raise ValueError(f"must not contain invisible or text-direction characters ({shown})")
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


_FQDN = "A fully qualified domain name, Unicode (IDNA 2008) or ASCII; stored in ASCII, lowercased."
_QUOTA = 'Bytes, a JSON integer: 1.0, "100" and true are refused.'


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class TenantCreate(BaseModel):
    """``POST /tenants``. Unknown fields are refused so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    slug: Annotated[
        str, Field(min_length=3, max_length=63, examples=["acme"], json_schema_extra={"pattern": SLUG_PATTERN})
    ]
    name: Annotated[
        str,
        Field(
            min_length=1,
            max_length=200,
            examples=["Acme Corporation"],
            json_schema_extra={"pattern": DISPLAY_NAME_PATTERN},
        ),
    ]
    mail_domain: Annotated[
        str | None,
        Field(
            default=None, min_length=1, max_length=253, description=f"Defaults to <slug>.<mail base domain>. {_FQDN}"
        ),
    ]
    quota_bytes: Annotated[StrictInt | None, Field(default=None, gt=0, le=MAX_QUOTA_BYTES, description=_QUOTA)]
    verify: Annotated[
        bool | None,
        Field(default=None, description="false (platform admins only): use mailDomain without proof of ownership"),
    ]

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG_RE.fullmatch(value):  # not match: its $ also matches before a final newline
            raise ValueError(
                "must be a lowercase DNS label: 3-63 characters of a-z, 0-9 and '-', not starting or ending with '-'"
            )
        if value[2:4] == "--":
            # IDNA reserves "??--" labels (xn-- and its kin); the slug becomes part of the mail domain.
            raise ValueError("must not have '--' as its third and fourth characters")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return clean_display_name(value)

    @field_validator("mail_domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        return None if value is None else normalise_hostname(value)


class TenantUpdate(BaseModel):
    """``PATCH /tenants/{slug}``: the parts of the desired state a user may change."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    name: Annotated[
        str | None,
        Field(default=None, min_length=1, max_length=200, json_schema_extra={"pattern": DISPLAY_NAME_PATTERN}),
    ]
    quota_bytes: Annotated[StrictInt | None, Field(default=None, gt=0, le=MAX_QUOTA_BYTES, description=_QUOTA)]
    mail_domain: Annotated[
        str | None,
        Field(
            default=None,
            min_length=1,
            max_length=253,
            description=f"Only while no mail domain is provisioned yet (e.g. Stalwart refused it). {_FQDN}",
        ),
    ]
    verify: Annotated[
        bool | None,
        Field(default=None, description="With mailDomain, false (platform admins only) skips proof of ownership"),
    ]

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else clean_display_name(value)

    @field_validator("mail_domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        return None if value is None else normalise_hostname(value)


class StepCondition(CamelModel):
    status: StepStatus
    reason: str
    message: str
    retryable: bool
    attempts: int
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    last_success_at: datetime | None
    last_transition_at: datetime | None
    observed_generation: int
    upstream_ids: dict[str, str]


class TenantOut(CamelModel):
    id: str
    slug: str
    name: str
    status: TenantStatus
    generation: int
    mail_domain: str
    mail_domain_status: DomainStatus | None
    quota_bytes: int
    provisioning_status: dict[StepName, StepStatus]
    provisioning_errors: dict[StepName, str]
    conditions: dict[StepName, StepCondition]
    owner: str | None
    created_at: datetime
    created_by: str | None
    updated_at: datetime
    updated_by: str | None
    activated_at: datetime | None


class TenantPage(CamelModel):
    items: list[TenantOut]
    total: int | None = Field(description="How many tenants match in all; counted only with ?count=true")
    limit: int
    offset: int
    next: str | None = Field(description="The cursor of the next page (pass it as ?cursor=); null on the last")


class TenantEventOut(CamelModel):
    at: datetime
    step: StepName | None
    kind: str
    message: str
    actor: str | None


class DnsRecordOut(CamelModel):
    type: str
    name: str
    value: str
    ttl: int
    purpose: Purpose


class RecordCheckOut(CamelModel):
    """One record to publish as DNS holds it: ``state`` ok, missing, wrong, conflicting (or unknown when
    the lookup failed); ``severity`` critical (mail will not flow) or warning; ``message`` says the fix."""

    type: str
    name: str
    purpose: Purpose
    expected: str
    state: str
    severity: str
    found: list[str]
    message: str


class DnsCheckOut(CamelModel):
    checked_at: datetime
    complete: bool
    mail_flows: bool
    records: list[RecordCheckOut]


class DnsRecordsOut(CamelModel):
    domain: str
    status: StepStatus
    records: list[DnsRecordOut]
    challenge: DnsRecordOut | None = Field(
        default=None, description="While the domain is unproven: the TXT record that proves ownership"
    )
    check: DnsCheckOut | None = Field(
        default=None, description="The last live check of the records (GET with ?check=now to check again)"
    )


class DomainSwitchIn(BaseModel):
    """The mail domain to switch to."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    mail_domain: Annotated[str, Field(min_length=1, max_length=253, examples=["acme.com"], description=_FQDN)]

    @field_validator("mail_domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        return normalise_hostname(value)


class DomainOut(CamelModel):
    """The tenant's claim to its mail domain: unverified until the challenge is found in DNS."""

    domain: str
    status: DomainStatus
    proof: DomainProof | None
    challenge: DnsRecordOut | None
    checks: int
    checked_at: datetime | None
    check_message: str | None
    expires_at: datetime | None
    verified_at: datetime | None
    verified_by: str | None


class TenantAdminOut(CamelModel):
    sub: str
    added_at: datetime
    added_by: str | None


class TenantAdminsOut(CamelModel):
    owner: str | None
    admins: list[TenantAdminOut]


class ErrorOut(BaseModel):
    error: str
    detail: Any


class FieldProblem(BaseModel):
    field: str
    message: str


class ValidationErrorOut(BaseModel):
    error: Literal["validation_error"]
    detail: list[FieldProblem]


class DomainPlanOut(CamelModel):
    """A planned mail domain switch: ``ready`` when nothing blocks it, what applying will do, and the
    target's claim (with the record that proves it while it is unproven)."""

    current: str
    target: str
    ready: bool
    blockers: list[str]
    actions: list[str]
    target_claim: DomainOut


class PlannedChangeOut(CamelModel):
    target: str
    action: Literal["create", "update", "delete", "unchanged"]
    changes: dict[str, FieldChangeOut]
    note: str


class FieldChangeOut(CamelModel):
    now: Any
    wanted: Any


class StepPlanOut(CamelModel):
    step: StepName
    changes: list[PlannedChangeOut]
    note: str
    error: str | None


class TenantPlanOut(CamelModel):
    """What a reconcile would change upstream (read-only): per step, per object, the fields that differ."""

    slug: str
    status: TenantStatus
    generation: int
    steps: list[StepPlanOut]
