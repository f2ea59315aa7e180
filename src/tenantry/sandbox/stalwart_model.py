"""Property definitions and value checks of the sandbox Stalwart objects (x:Domain, x:Account, x:DkimSignature)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["string", "boolean", "number", "id", "set", "list", "object", "map", "datetime", "secret", "json"]
Resolver = Callable[[str], str]

MASK = "****"


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
    "otpAuth": OPT_STRING,
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
    "credentials": _p("list", shape=Shape({"Password": _PASSWORD})),
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


def _is_text(value: Any, prop: Prop) -> bool:
    return isinstance(value, str) and (prop.choices is None or value in prop.choices)


def _is_unsigned(value: Any, prop: Prop) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


_SCALARS: Mapping[str, Callable[[Any, Prop], bool]] = {
    "string": _is_text,
    "secret": _is_text,
    "datetime": _is_text,
    "number": _is_unsigned,
    "boolean": lambda value, _: isinstance(value, bool),
    "id": lambda value, _: isinstance(value, str) and bool(value),
    "json": lambda _, __: True,
}


def coerce(prop: Prop, value: Any, path: str, resolve: Resolver) -> Any:
    """Check ``value`` against ``prop`` and return it normalised (creation refs resolved, defaults filled).

    Raises :class:`SetError` ``invalidPatch`` naming ``path`` when the JSON shape is wrong.
    """
    if value is None:
        if prop.nullable:
            return None
        raise invalid_patch(path, f"Property {path} cannot be null")
    scalar = _SCALARS.get(prop.kind)
    if scalar is not None:
        if not scalar(value, prop):
            raise invalid_patch(path, f"Invalid value for property {path}")
        return resolve(value) if prop.kind == "id" else value
    if not isinstance(value, dict):
        # Collections are JSON objects on this wire, never arrays.
        raise invalid_patch(path, f"Expected a JSON object for property {path}")
    if prop.kind == "set":
        return _coerce_set(prop, value, path, resolve)
    if prop.kind == "map":
        return _coerce_map(prop, value, path)
    assert prop.shape is not None
    if prop.kind == "list":
        if not all(re.fullmatch(r"\d+", key) for key in value):
            raise invalid_patch(path, f"List keys of property {path} must be indexes")
        items = sorted(((int(k), v) for k, v in value.items() if v is not None), key=lambda kv: kv[0])
        return {str(i): coerce_shape(prop.shape, item, f"{path}/{i}", resolve) for i, (_, item) in enumerate(items)}
    return coerce_shape(prop.shape, value, path, resolve)


def _coerce_set(prop: Prop, value: dict[str, Any], path: str, resolve: Resolver) -> dict[str, bool]:
    out: dict[str, bool] = {}
    for key, flag in value.items():
        if flag is None or flag is False:
            continue  # false/null members are dropped, as upstream does
        if flag is not True:
            raise invalid_patch(path, f"Set members of property {path} must be true")
        if prop.choices is not None and key not in prop.choices:
            raise invalid_patch(path, f"Invalid value {key!r} for property {path}")
        out[resolve(key) if prop.target is not None else key] = True
    return out


def _coerce_map(prop: Prop, value: dict[str, Any], path: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, amount in value.items():
        if prop.choices is not None and key not in prop.choices:
            raise invalid_patch(path, f"Invalid key {key!r} for property {path}")
        if amount is None:
            continue
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise invalid_patch(path, f"Expected an unsigned integer in property {path}")
        out[key] = amount
    return out


def coerce_shape(shape: Shape, value: Any, path: str, resolve: Resolver) -> dict[str, Any]:
    """Check an embedded object (a variant when it carries ``@type``) and fill that variant's defaults."""
    if not isinstance(value, dict):
        raise invalid_patch(path, f"Expected a JSON object for property {path}")
    variant = "" if shape.plain else value.get("@type")
    if not isinstance(variant, str) or variant not in shape.variants:
        raise invalid_patch(path, f"Invalid or missing @type for property {path}")
    fields = shape.variants[variant]
    out: dict[str, Any] = {"@type": variant} if variant else {}
    out.update(shape.defaults.get(variant, {}))
    for key, item in value.items():
        if key == "@type":
            continue
        sub = fields.get(key)
        if sub is None:
            raise invalid_patch(path, f"Unknown property {key!r} in {path}")
        if sub.server_set:
            raise invalid_patch(path, "Cannot modify server set property")
        if item is None and not sub.nullable:
            out.pop(key, None)
            continue
        out[key] = coerce(sub, item, f"{path}/{key}", resolve)
    return out


def mask_secrets(props: Mapping[str, Prop], value: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``value`` with every secret replaced by ``****`` (how upstream reads secrets back)."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        prop = props.get(key)
        out[key] = item if prop is None else _mask(prop, item)
    return out


def _mask(prop: Prop, value: Any) -> Any:
    if prop.kind == "secret" and isinstance(value, str):
        return MASK
    if prop.shape is None or not isinstance(value, dict):
        return value
    shape = prop.shape
    if prop.kind == "list":
        return {k: _mask(Prop("object", shape=shape), v) for k, v in value.items()}
    fields = shape.variants.get("" if shape.plain else str(value.get("@type")), {})
    return mask_secrets(fields, value)


def restore_masked(new: Any, old: Any) -> Any:
    """Where a client sent ``****`` back, keep the stored secret (upstream semantics of a masked value)."""
    if new == MASK and isinstance(old, str):
        return old
    if isinstance(new, dict) and isinstance(old, dict):
        return {k: restore_masked(v, old.get(k)) for k, v in new.items()}
    return new


def apply_pointer(record: dict[str, Any], pointer: str, value: Any) -> str:
    """Apply an update key such as ``memberGroupIds/<id>`` or ``aliases/0/domainId``; returns the property."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")]
    head, rest = parts[0], parts[1:]
    if not rest:
        record[head] = value
        return head
    node = record.get(head)
    if not isinstance(node, dict):
        node = {}
        record[head] = node
    node = dict(node)  # copy: the stored record must not change before validation succeeds
    record[head] = node
    for part in rest[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            raise invalid_patch(head, f"Invalid patch path {pointer}")
        child = dict(child)
        node[part] = child
        node = child
    if value is None:
        node.pop(rest[-1], None)
    else:
        node[rest[-1]] = value
    return head
