"""In-memory object store of the sandbox Stalwart: create/update/destroy rules, reads, queries, DKIM keys."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Set
from datetime import UTC, datetime
from typing import Any

from tenantry.sandbox.stalwart_dkim import (
    ALGORITHM_NAMES,
    DEFAULT_ALGORITHM,
    automatic_keys,
    expand_selector,
    public_key_of,
    refuse_unusable_key,
)
from tenantry.sandbox.stalwart_dns import zone_file
from tenantry.sandbox.stalwart_index import TableIndex, decode_id, encode_id, in_creation_order, wanted_tokens
from tenantry.sandbox.stalwart_model import (
    DKIM,
    DKIM_AUTOMATIC_DEFAULTS,
    DKIM_DEFAULTS,
    DOMAIN,
    DOMAIN_DEFAULTS,
    GROUP,
    GROUP_DEFAULTS,
    USER,
    USER_DEFAULTS,
    Prop,
    Resolver,
    SetError,
    invalid_patch,
)
from tenantry.sandbox.stalwart_rules import (
    normalise_domain,
    normalise_local_part,
    password_problem,
    refuse_secondary_credentials,
)
from tenantry.sandbox.stalwart_values import apply_pointer, coerce, mask_secrets, restore_masked, with_nulls

OBJECTS = ("Domain", "Account", "DkimSignature")


def utc_now() -> datetime:
    return datetime.now(tz=UTC).replace(microsecond=0)


def utc_text(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class StalwartStore:
    """Domains, accounts and DKIM keys with upstream's validation, uniqueness and link rules.

    ``tables`` are read freely but written only through :meth:`_put` and :meth:`_drop`, which keep
    ``indexes`` (per table, the ids holding each value of the properties queries and rules look up) in step.
    """

    def __init__(
        self, *, clock: Callable[[], float], dkim_delay: float, fast_dkim: bool, mail_host: str | None
    ) -> None:
        self.tables: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in OBJECTS}
        self.indexes: dict[str, TableIndex] = {name: TableIndex.of(name) for name in OBJECTS}
        self._clock = clock
        self._dkim_delay = dkim_delay
        self._fast_dkim = fast_dkim
        self._mail_host = mail_host
        self._dkim_due: dict[str, float] = {}
        self._changes = dict.fromkeys(OBJECTS, 0)
        self._counter = 0

    # -- ids, states, helpers ----------------------------------------------------------------------
    def new_id(self) -> str:
        self._counter += 1
        return encode_id(self._counter)

    def state(self, obj: str) -> str:
        return encode_id(self._changes[obj])

    def _changed(self, obj: str) -> None:
        self._changes[obj] += 1

    def _put(self, obj: str, object_id: str, record: dict[str, Any]) -> None:
        index = self.indexes[obj]
        before = self.tables[obj].get(object_id)
        if before is not None:
            index.remove(object_id, before)
        self.tables[obj][object_id] = record
        index.add(object_id, record)
        self._changed(obj)

    def _drop(self, obj: str, object_id: str) -> None:
        self.indexes[obj].remove(object_id, self.tables[obj].pop(object_id))
        self._changed(obj)

    @property
    def mail_host(self) -> str:
        return self._mail_host or "mail.sandbox.test"

    @staticmethod
    def props(obj: str, record: Mapping[str, Any] | None = None) -> Mapping[str, Prop]:
        if obj == "Domain":
            return DOMAIN
        if obj == "DkimSignature":
            return DKIM
        if record is None:
            return {**GROUP, **USER}
        return USER if record.get("@type") == "User" else GROUP

    # -- create / update / destroy -----------------------------------------------------------------
    def create(self, obj: str, value: Mapping[str, Any], resolve: Resolver) -> str:
        if obj == "Domain":
            record = self._build(DOMAIN, DOMAIN_DEFAULTS, value, resolve)
            self._check_domain(record, None)
        elif obj == "Account":
            kind = value.get("@type")
            if kind not in ("User", "Group"):
                raise invalid_patch("@type", "Invalid or missing @type, expected User or Group")
            props, defaults = (USER, USER_DEFAULTS) if kind == "User" else (GROUP, GROUP_DEFAULTS)
            record = {"@type": kind, **self._build(props, defaults, value, resolve)}
            self._check_account(record, None, {})
        else:
            kind = value.get("@type", DEFAULT_ALGORITHM)
            if kind not in ALGORITHM_NAMES:
                raise invalid_patch("@type", "Invalid or missing @type")
            record = {"@type": kind, **self._build(DKIM, DKIM_DEFAULTS, value, resolve)}
            self._check_key(record, None)
        new_id = self.new_id()
        record["createdAt"] = utc_text(utc_now())
        self._put(obj, new_id, record)
        if obj == "Domain":
            self._mail_host = self._mail_host or f"mail.{record['name']}"
            if record["dkimManagement"]["@type"] == "Automatic":
                self._dkim_due[new_id] = self._clock() + self._dkim_delay
        return new_id

    def _build(
        self, props: Mapping[str, Prop], defaults: Mapping[str, Any], value: Mapping[str, Any], resolve: Resolver
    ) -> dict[str, Any]:
        for key in value:
            self._check_settable(props, key)
        merged = {**copy.deepcopy(dict(defaults)), **{k: v for k, v in value.items() if k != "@type"}}
        if "credentials" in merged:
            refuse_secondary_credentials(merged["credentials"])
        record = {key: coerce(props[key], item, key, resolve) for key, item in merged.items()}
        return {k: v for k, v in record.items() if v is not None}

    @staticmethod
    def _check_settable(props: Mapping[str, Prop], key: str) -> None:
        if key == "@type":
            return
        prop = props.get(key)
        if key == "id" or (prop is not None and prop.server_set):
            raise invalid_patch(key, "Cannot modify server set property")
        if prop is None:
            raise invalid_patch(key, "Invalid property")

    def update(self, obj: str, object_id: str, patch: Mapping[str, Any], resolve: Resolver) -> None:
        current = self.tables[obj].get(object_id)
        if current is None:
            raise SetError("notFound")
        props = self.props(obj, current)
        working = copy.deepcopy(current)
        touched: set[str] = set()
        for key, item in patch.items():
            head = key.split("/", 1)[0]
            if head == "@type":
                if item != current.get("@type"):
                    raise invalid_patch("@type", "The @type of an object cannot change")
                continue
            self._check_settable(props, head)
            touched.add(apply_pointer(working, key, item))
        for head in touched:
            if head == "credentials":
                refuse_secondary_credentials(working.get(head))
            value = coerce(props[head], working.get(head), head, resolve)
            value = restore_masked(value, current.get(head))
            if value is None:
                working.pop(head, None)
            else:
                working[head] = value
        if obj == "Domain":
            self._check_domain(working, object_id, current)
            became_automatic = (
                working["dkimManagement"]["@type"] == "Automatic" and current["dkimManagement"]["@type"] != "Automatic"
            )
            if became_automatic:
                self._dkim_due[object_id] = self._clock() + self._dkim_delay
        elif obj == "Account":
            self._check_account(working, object_id, current)
        else:
            self._check_key(working, current)
        self._put(obj, object_id, working)

    def destroy(self, obj: str, object_id: str) -> None:
        """Remove an object; refused with ``objectIsLinked`` while others point at it (a domain's accounts
        and DKIM keys, a group's members), as upstream's registry refuses to leave dangling links."""
        table = self.tables[obj]
        if object_id not in table:
            raise SetError("notFound")
        linked = self.linked_objects(obj, object_id)
        if linked:
            raise SetError("objectIsLinked", objectId={"object": obj, "id": object_id}, linkedObjects=linked)
        if obj == "Domain":
            self._dkim_due.pop(object_id, None)
        self._drop(obj, object_id)

    def linked_objects(self, obj: str, object_id: str) -> list[dict[str, str]]:
        """What points at an object, ordered as upstream lists it: by object type, then by id."""
        accounts = self.indexes["Account"]
        found: list[tuple[str, str]] = []
        if obj == "Domain":
            found += [("Account", account_id) for account_id in accounts.ids("domains", [object_id])]
            found += [("DkimSignature", key_id) for key_id in self.key_ids_of(object_id)]
        elif obj == "Account":
            found += [("Account", account_id) for account_id in accounts.ids("memberGroupIds", [("member", object_id)])]
        found.sort(key=lambda item: (OBJECTS.index(item[0]), decode_id(item[1])))
        return [{"object": name, "id": linked_id} for name, linked_id in found]

    # -- rules -------------------------------------------------------------------------------------
    def _check_domain(
        self, record: dict[str, Any], own_id: str | None, before: Mapping[str, Any] | None = None
    ) -> None:
        """Upstream's ``validate_domain`` (mapping/domain.rs) and the registry's unique keys, in its order."""
        if "name" in record:
            record["name"] = normalise_domain(record["name"])
        record["aliases"] = {normalise_domain(a, "aliases"): True for a in record.get("aliases", {})}
        _check_selector_template(record["dkimManagement"], (before or {}).get("dkimManagement"))
        if "name" not in record:
            raise SetError("validationFailed", validationErrors=[{"type": "Required", "property": "name"}])
        # A name that is another domain's alias clashes on "name"; an alias clashing with another domain's
        # name or alias clashes on "aliases".
        domains = self.indexes["Domain"]
        for value in (record["name"], *record["aliases"]):
            holders = [*domains.ids("name", [("value", value)]), *domains.ids("aliases", [("member", value)])]
            others = in_creation_order(i for i in holders if i != own_id)
            if others:
                clash = "name" if value == record["name"] else "aliases"
                raise SetError(
                    "primaryKeyViolation", properties=[clash], objectId={"object": "Domain", "id": others[0]}
                )

    def _check_account(self, record: dict[str, Any], own_id: str | None, before: Mapping[str, Any]) -> None:
        """Local parts (patch), passwords (``validate_account``), then the registry's required properties,
        foreign keys and unique addresses, in upstream's order."""
        if "name" in record:
            record["name"] = normalise_local_part(record["name"])
        for alias in record.get("aliases", {}).values():
            if "name" in alias:
                alias["name"] = normalise_local_part(alias["name"], "aliases")
        self._check_credentials(record.get("credentials", {}), before.get("credentials", {}))
        missing = [p for p in ("name", "domainId") if p not in record]
        for alias in record.get("aliases", {}).values():
            missing += [f"aliases/{p}" for p in ("name", "domainId") if p not in alias]
        if missing:
            raise SetError("validationFailed", validationErrors=[{"type": "Required", "property": p} for p in missing])
        addresses = [(record["name"], record["domainId"])]
        addresses += [(alias["name"], alias["domainId"]) for alias in record.get("aliases", {}).values()]
        for _, domain_id in addresses:
            if domain_id not in self.tables["Domain"]:
                raise SetError("invalidForeignKey", objectId={"object": "Domain", "id": domain_id})
        for group_id in record.get("memberGroupIds", {}):
            group = self.tables["Account"].get(group_id)
            if group is None or group["@type"] != "Group" or group_id == own_id:
                raise SetError("invalidForeignKey", objectId={"object": "Account", "id": group_id})
        for local, domain_id in addresses:
            owner = self._address_owner(local, domain_id, own_id)
            if owner is not None:
                raise SetError("primaryKeyViolation", properties=["email"], objectId={"object": "Account", "id": owner})

    def _check_key(self, record: dict[str, Any], before: Mapping[str, Any] | None) -> None:
        """A manual DKIM key: a usable private key (checked when it changes), a selector, an existing domain."""
        if before is None or record.get("privateKey") != before.get("privateKey"):
            refuse_unusable_key(record)
        if not record.get("selector"):
            raise SetError("validationFailed", validationErrors=[{"type": "Required", "property": "selector"}])
        if record["domainId"] not in self.tables["Domain"]:
            raise SetError("invalidForeignKey", objectId={"object": "Domain", "id": record["domainId"]})
        record["publicKey"] = public_key_of(record["@type"], record["privateKey"]["secret"])

    def _address_owner(self, local: str, domain_id: str, own_id: str | None) -> str | None:
        holders = self.indexes["Account"].ids("addresses", [(local, domain_id)])
        others = in_creation_order(i for i in holders if i != own_id)
        return others[0] if others else None

    @staticmethod
    def _check_credentials(credentials: Mapping[str, Any], before: Mapping[str, Any]) -> None:
        # A secret unchanged from the stored one (sent back as ``****``) is not checked again.
        old_secrets = {c.get("secret") for c in before.values()}
        if len(credentials) > 1:
            raise SetError("invalidProperties", "Only one password credential is allowed.", properties=["credentials"])
        for credential in credentials.values():
            secret = credential.get("secret")
            problem = None if secret in old_secrets else password_problem(secret)
            if problem is not None:
                # mapping/principal.rs: the strength check reports invalidProperties on `secret`.
                raise SetError("invalidProperties", problem, properties=["secret"])

    # -- reads ---------------------------------------------------------------------------------------
    def read(self, obj: str, object_id: str, properties: list[str] | None) -> dict[str, Any]:
        record = self.tables[obj][object_id]
        props = self.props(obj, record)
        view: dict[str, Any] = {"id": object_id, **with_nulls(props, mask_secrets(props, record))}
        if obj == "Account":
            domain = self.tables["Domain"].get(record["domainId"], {})
            view["emailAddress"] = f"{record['name']}@{domain.get('name', '')}"
            for index, credential in view.get("credentials", {}).items():
                credential["credentialId"] = index  # server-set: the credential's position
        if obj == "Domain" and (properties is None or "dnsZoneFile" in properties):
            view["dnsZoneFile"] = zone_file(record, self.keys_of(object_id), self.mail_host)
        if properties is None:
            return view
        return {"id": object_id, **{p: view.get(p) for p in properties if p == "@type" or p in props}}

    def key_ids_of(self, domain_id: str) -> list[str]:
        """The ids of a domain's DKIM keys, oldest first."""
        return in_creation_order(self.indexes["DkimSignature"].ids("domainId", [("value", domain_id)]))

    def keys_of(self, domain_id: str) -> list[dict[str, Any]]:
        keys = self.tables["DkimSignature"]
        return [keys[key_id] for key_id in self.key_ids_of(domain_id)]

    def query(self, obj: str, conditions: Iterable[tuple[str, Any]]) -> list[str]:
        """Ids matching every ``(property, value)`` condition, oldest first."""
        pairs = list(conditions)
        table = self.tables[obj]
        if not pairs:
            return list(table)
        candidates = self._candidates(obj, pairs)
        return [
            object_id
            for object_id in (table if candidates is None else candidates)
            if all(self._matches(obj, object_id, table[object_id], k, v) for k, v in pairs)
        ]

    def _candidates(self, obj: str, pairs: list[tuple[str, Any]]) -> list[str] | None:
        """The fewest ids, oldest first, that an indexed condition narrows the query to; None to scan."""
        index = self.indexes[obj]
        best: Set[str] | None = None
        for key, value in pairs:
            tokens = wanted_tokens(value) if index.covers(key) else None
            if tokens is not None:
                ids = index.ids(key, tokens)
                best = ids if best is None or len(ids) < len(best) else best
        # Sorting most of the table would cost more than scanning it in its own order.
        if best is None or len(best) * 4 > len(self.tables[obj]):
            return None
        return in_creation_order(best)

    def _matches(self, obj: str, object_id: str, record: Mapping[str, Any], key: str, value: Any) -> bool:
        if key == "text":
            needle = str(value).lower()
            # Upstream's text index: the name, the description and every alias (name) of the object.
            haystack = [record.get("name"), record.get("description")]
            aliases = record.get("aliases") or {}
            haystack += [key if item is True else item.get("name") for key, item in aliases.items()]
            return any(isinstance(h, str) and needle in h.lower() for h in haystack)
        stored = record.get(key)
        if isinstance(stored, dict):
            return isinstance(value, str) and value in stored
        return bool(stored == value)

    # -- DKIM ------------------------------------------------------------------------------------------
    def tick(self) -> None:
        """Generate the keys whose delay has passed (checked on each read, so no background task is needed)."""
        now = self._clock()
        for domain_id, due in list(self._dkim_due.items()):
            if due <= now:
                self.generate_dkim(domain_id)

    def generate_dkim(self, domain_id: str) -> None:
        """One active key per configured algorithm the domain has no active key for yet."""
        self._dkim_due.pop(domain_id, None)
        domain = self.tables["Domain"].get(domain_id)
        if domain is None:
            return
        # A domain on Manual management (generation forced by a test) uses the Automatic defaults.
        settings = {**DKIM_AUTOMATIC_DEFAULTS, **domain["dkimManagement"]}
        have = {key["@type"] for key in self.keys_of(domain_id) if key["stage"] == "active"}
        now = utc_now()
        for record in automatic_keys(domain_id, domain, settings, have, when=now, fast=self._fast_dkim):
            record["createdAt"] = utc_text(now)
            self._put("DkimSignature", self.new_id(), record)


def _check_selector_template(dkim: Mapping[str, Any], before: Mapping[str, Any] | None) -> None:
    """An Automatic domain's selector template must expand; upstream checks it on create and when an
    Automatic template changes (not when a Manual domain turns Automatic: mapping/domain.rs)."""
    if dkim.get("@type") != "Automatic":
        return
    if before is not None and (
        before.get("@type") != "Automatic" or before.get("selectorTemplate") == dkim.get("selectorTemplate")
    ):
        return
    try:
        expand_selector(str(dkim.get("selectorTemplate", "")), "Dkim1RsaSha256", utc_now())
    except ValueError as err:
        raise SetError("invalidProperties", str(err), properties=["selectorTemplate"]) from err
