"""Property definitions of the sandbox Stalwart objects (x:Domain, x:Account, x:DkimSignature)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["string", "boolean", "number", "id", "set", "list", "object", "map", "datetime", "secret", "json"]
Resolver = Callable[[str], str]


class SetError(Exception):
    """A JMAP SetError for one object in a ``/set`` call; ``extra`` carries properties/objectId/..."""

    def __init__(self, type_: str, description: str | None = None, **extra: Any) -> None:
        super().__init__(type_ if description is None else f"{type_}: {description}")
        self.type = type_
        self.description = description
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.description is not None:
            out["description"] = self.description
        out.update(self.extra)
        return out


def invalid_patch(prop: str, description: str) -> SetError:
    return SetError("invalidPatch", description, properties=[prop])


@dataclass(frozen=True)
class Shape:
    """An embedded object: ``variants`` maps each ``@type`` to its properties ("" = a plain object)."""

    variants: Mapping[str, Mapping[str, Prop]]
    defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def plain(self) -> bool:
        return "" in self.variants


@dataclass(frozen=True)
class Prop:
    """One property: its JSON encoding, whether only the server sets it, and what its members may be."""

    kind: Kind
    nullable: bool = False
    server_set: bool = False
    shape: Shape | None = None
    choices: frozenset[str] | None = None
    target: str | None = None  # object an id (or a set of ids) points at
    shown_when_null: bool = True  # reads list it as null when unset (upstream leaves out only otpAuth)


def _p(kind: Kind, **kw: Any) -> Prop:
    return Prop(kind, **kw)


STRING, OPT_STRING, BOOL, NUMBER = _p("string"), _p("string", nullable=True), _p("boolean"), _p("number")
SERVER_STRING, SERVER_TIME = _p("string", server_set=True), _p("datetime", server_set=True)
STRING_SET = _p("set")

DKIM_ALGORITHMS = frozenset({"Dkim1Ed25519Sha256", "Dkim1RsaSha256", "Dkim2Ed25519Sha256", "Dkim2RsaSha256"})
DNS_RECORD_TYPES = frozenset(
    {
        "dkim",
        "tlsa",
        "spf",
        "mx",
        "dmarc",
        "srv",
        "mtaSts",
        "tlsRpt",
        "caa",
        "autoConfig",
        "autoConfigLegacy",
        "autoDiscover",
    }
)
STORAGE_QUOTAS = frozenset(
    {
        "maxEmails",
        "maxMailboxes",
        "maxEmailSubmissions",
        "maxEmailIdentities",
        "maxParticipantIdentities",
        "maxSieveScripts",
        "maxPushSubscriptions",
        "maxCalendars",
        "maxCalendarEvents",
        "maxCalendarEventNotifications",
        "maxAddressBooks",
        "maxContactCards",
        "maxFiles",
        "maxFolders",
        "maxMaskedAddresses",
        "maxAppPasswords",
        "maxApiKeys",
        "maxPublicKeys",
        "maxDiskQuota",
    }
)

DKIM_AUTOMATIC_DEFAULTS: Mapping[str, Any] = {
    "algorithms": {"Dkim1Ed25519Sha256": True, "Dkim1RsaSha256": True},
    "selectorTemplate": "v{version}-{algorithm}-{date-%Y%m%d}",
    "rotateAfter": 90 * 86_400_000,
    "retireAfter": 7 * 86_400_000,
    "deleteAfter": 30 * 86_400_000,
}
_PERMISSION_LIST = {"enabledPermissions": STRING_SET, "disabledPermissions": STRING_SET}
_ENCRYPTION = {"allowSpamTraining": BOOL, "encryptOnAppend": BOOL, "publicKey": _p("id")}

DOMAIN: Mapping[str, Prop] = {
    "name": STRING,
    "aliases": STRING_SET,
    "isEnabled": BOOL,
    "description": OPT_STRING,
    "catchAllAddress": OPT_STRING,
    "subAddressing": _p("object", shape=Shape({"Enabled": {}, "Disabled": {}, "Custom": {"customRule": _p("json")}})),
    "allowRelaying": BOOL,
    "reportAddressUri": OPT_STRING,
    "certificateManagement": _p(
        "object",
        shape=Shape({"Manual": {}, "Automatic": {"acmeProviderId": _p("id"), "subjectAlternativeNames": STRING_SET}}),
    ),
    "dkimManagement": _p(
        "object",
        shape=Shape(
            {
                "Manual": {},
                "Automatic": {
                    "algorithms": _p("set", choices=DKIM_ALGORITHMS),
                    "selectorTemplate": STRING,
                    "rotateAfter": NUMBER,
                    "retireAfter": NUMBER,
                    "deleteAfter": NUMBER,
                },
            },
            defaults={"Automatic": DKIM_AUTOMATIC_DEFAULTS},
        ),
    ),
    "dnsManagement": _p(
        "object",
        shape=Shape(
            {
                "Manual": {},
                "Automatic": {
                    "dnsServerId": _p("id"),
                    "origin": OPT_STRING,
                    "publishRecords": _p("set", choices=DNS_RECORD_TYPES),
                },
            },
            defaults={"Automatic": {"publishRecords": dict.fromkeys(sorted(DNS_RECORD_TYPES), True)}},
        ),
    ),
    "memberTenantId": _p("id", nullable=True),
    "directoryId": _p("id", nullable=True),
    "logo": OPT_STRING,
    "createdAt": SERVER_TIME,
    "dnsZoneFile": SERVER_STRING,
}
DOMAIN_DEFAULTS: Mapping[str, Any] = {
    "aliases": {},
    "isEnabled": True,
    "allowRelaying": False,
    "reportAddressUri": "mailto:postmaster",
    "subAddressing": {"@type": "Enabled"},
    "certificateManagement": {"@type": "Manual"},
    "dkimManagement": {"@type": "Automatic"},
    "dnsManagement": {"@type": "Manual"},
}

_EMAIL_ALIAS = Shape(
    {"": {"name": STRING, "domainId": _p("id", target="Domain"), "enabled": BOOL, "description": OPT_STRING}},
    defaults={"": {"enabled": True}},
)
_PASSWORD = {
    "secret": _p("secret"),
    "expiresAt": _p("datetime", nullable=True),
    "allowedIps": STRING_SET,
    "otpAuth": _p("string", nullable=True, shown_when_null=False),
    "credentialId": SERVER_STRING,
}
_ACCOUNT_COMMON: Mapping[str, Prop] = {
    "name": STRING,
    "domainId": _p("id", target="Domain"),
    "emailAddress": SERVER_STRING,
    "aliases": _p("list", shape=_EMAIL_ALIAS),
    "description": OPT_STRING,
    "memberTenantId": _p("id", nullable=True),
    "permissions": _p("object", shape=Shape({"Inherit": {}, "Merge": _PERMISSION_LIST, "Replace": _PERMISSION_LIST})),
    "quotas": _p("map", choices=STORAGE_QUOTAS),
    "locale": STRING,
    "timeZone": OPT_STRING,
    "createdAt": SERVER_TIME,
    "usedDiskQuota": _p("number", server_set=True),
}
USER: Mapping[str, Prop] = {
    **_ACCOUNT_COMMON,
    "credentials": _p("list", shape=Shape({"Password": _PASSWORD}, defaults={"Password": {"allowedIps": {}}})),
    "memberGroupIds": _p("set", target="Group"),
    "roles": _p("object", shape=Shape({"User": {}, "Admin": {}, "Custom": {"roleIds": _p("set")}})),
    "encryptionAtRest": _p(
        "object",
        shape=Shape(
            {
                "Disabled": {},
                "Aes128": _ENCRYPTION,
                "Aes256": _ENCRYPTION,
                "Aes256Gcm": _ENCRYPTION,
                "ChaCha20Poly1305": _ENCRYPTION,
            }
        ),
    ),
}
GROUP: Mapping[str, Prop] = {
    **_ACCOUNT_COMMON,
    "roles": _p("object", shape=Shape({"Default": {}, "Custom": {"roleIds": _p("set")}})),
}
_ACCOUNT_DEFAULTS = {
    "aliases": {},
    "permissions": {"@type": "Inherit"},
    "quotas": {},
    "locale": "en_US",
    "usedDiskQuota": 0,
}
USER_DEFAULTS: Mapping[str, Any] = {
    **_ACCOUNT_DEFAULTS,
    "credentials": {},
    "memberGroupIds": {},
    "roles": {"@type": "User"},
    "encryptionAtRest": {"@type": "Disabled"},
}
GROUP_DEFAULTS: Mapping[str, Any] = {**_ACCOUNT_DEFAULTS, "roles": {"@type": "Default"}}

DKIM: Mapping[str, Prop] = {
    "domainId": _p("id", target="Domain"),
    "selector": STRING,
    "privateKey": _p(
        "object",
        shape=Shape(
            {
                "Text": {"secret": _p("secret")},
                "EnvironmentVariable": {"variableName": STRING},
                "File": {"filePath": STRING},
            }
        ),
    ),
    "publicKey": SERVER_STRING,
    "stage": _p("string", choices=frozenset({"active", "pending", "retiring", "retired"})),
    "canonicalization": STRING,
    "headers": STRING_SET,
    "report": BOOL,
    "auid": OPT_STRING,
    "expire": _p("number", nullable=True),
    "thirdParty": OPT_STRING,
    "thirdPartyHash": _p("string", nullable=True, choices=frozenset({"sha256", "sha1"})),
    "memberTenantId": _p("id", nullable=True),
    "nextTransitionAt": _p("datetime", nullable=True),
    "createdAt": SERVER_TIME,
}
DKIM_DEFAULTS: Mapping[str, Any] = {
    "canonicalization": "relaxed/relaxed",
    "stage": "active",
    "report": True,
    "headers": {"Date": True, "From": True, "Message-ID": True, "Subject": True, "To": True},
}

# Names the query filters accept: the server-side indexes of each object.
FILTERS: Mapping[str, frozenset[str]] = {
    "Domain": frozenset({"name", "aliases", "text", "memberTenantId"}),
    "Account": frozenset({"name", "domainId", "@type", "memberGroupIds", "memberTenantId", "text"}),
    "DkimSignature": frozenset({"domainId", "memberTenantId"}),
}
