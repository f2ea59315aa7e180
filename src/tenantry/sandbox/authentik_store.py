"""The authentik sandbox's in-memory directory: groups (and, later, users and roles) and their API shapes."""

from __future__ import annotations

import hashlib
import itertools
import secrets
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tenantry.sandbox.authentik_drf import FieldError
from tenantry.sandbox.authentik_index import GroupIndex, GroupView, SortKey, Token

# What a new install holds (blueprints/system/bootstrap.yaml): the superuser group and its one member.
ADMIN_GROUP = "authentik Admins"
ADMIN_USERNAME = "akadmin"

GROUP_INCLUDE_DEFAULTS: Mapping[str, bool] = {
    "include_users": True,
    "include_children": False,
    "include_parents": False,
    "include_inherited_roles": False,
}


@dataclass
class GroupRecord:
    """One stored group; ``pk`` is the canonical UUID string the API addresses it by.

    Change a stored group through :class:`Directory` only, which keeps its indexes in step; ``seq`` is its
    place in creation order, set when it is stored.
    """

    pk: str
    num_pk: int
    name: str
    is_superuser: bool = False
    parents: list[str] = field(default_factory=list)
    users: list[int] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    roles: list[str] = field(default_factory=list)
    seq: int = field(default=0, compare=False, repr=False)

    @property
    def sort_key(self) -> SortKey:
        return (self.name, self.seq, self.pk)


def canonical_uuid(raw: str) -> str | None:
    """The canonical form of a UUID path or body value, or None when it is not one."""
    try:
        return str(uuid.UUID(raw))
    except (ValueError, TypeError, AttributeError):
        return None


def num_pk(pk: str) -> int:
    """``Group.num_pk``: the first five decimal digits of the UUID's integer (authentik/core/models.py)."""
    return int(str(uuid.UUID(pk).int)[:5])


class Directory:
    """The sandbox's state. Every method takes the lock, so tests may call it from another thread.

    ``users`` (int pk -> PartialUser-shaped dict, served one at a time by ``/core/users/{id}/``) and
    ``roles`` (uuid -> Role-shaped dict, no endpoint yet) are stored here; group validation and
    serialization resolve references through them. ``builtin`` holds the pks of the groups a new install
    starts with (see :meth:`bootstrap`). Groups are indexed by name, attribute value and links
    (:class:`GroupIndex`), users by username; a user's ``username`` changes through :meth:`update_user` only.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.groups: dict[str, GroupRecord] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self.roles: dict[str, dict[str, Any]] = {}
        self.builtin: set[str] = set()
        self.index = GroupIndex()
        self._sequence = itertools.count(1)
        self._usernames: dict[str, set[int]] = {}
        self._last_user_pk = 0
        self._install_id = secrets.token_hex(16)

    def bootstrap(self) -> None:
        """What authentik's bootstrap blueprint creates: ``akadmin`` in the superuser group ``authentik Admins``."""
        with self.lock:
            admin = self.add_user(ADMIN_USERNAME, name="authentik Default Admin", email="root@example.com")
            group = self.insert_group({"name": ADMIN_GROUP, "is_superuser": True, "users": [admin]})
            self.builtin.add(group.pk)

    def add_user(self, username: str, *, name: str = "", email: str = "") -> int:
        """Store a user in the ``PartialUser`` shape groups show; returns its pk."""
        with self.lock:
            pk = self._last_user_pk + 1  # the highest pk in use, plus one
            # User.uid is a hash of the pk and the install id (authentik/core/models.py).
            uid = hashlib.sha256(f"{pk}-{self._install_id}".encode()).hexdigest()
            self.users[pk] = {
                "pk": pk,
                "username": username,
                "name": name,
                "is_active": True,
                "last_login": None,
                "email": email,
                "attributes": {},
                "uid": uid,
            }
            self._last_user_pk = pk
            self._usernames.setdefault(str(username), set()).add(pk)
            return pk

    def has_user(self, pk: int) -> bool:
        with self.lock:
            return pk in self.users

    def user_named(self, username: str) -> int | None:
        """The pk of the user called ``username``; of the newest one, should several share it."""
        with self.lock:
            pks = self._usernames.get(username)
            return max(pks) if pks else None

    def serialize_user(self, pk: int) -> dict[str, Any]:
        """The user as ``/core/users/{id}/`` answers it (UserSerializer): the PartialUser fields, its groups
        (pks and partial objects), and the read-only fields authentik adds."""
        with self.lock:
            user = _deep_copy(self.users[pk])
            groups = sorted((self.groups[g] for g in self.index.member_of.get(pk, ())), key=lambda g: g.seq)
            stamp = user.setdefault("_created", "2026-01-01T00:00:00.000000Z")
            return {
                **{k: v for k, v in user.items() if not k.startswith("_")},
                "groups": [g.pk for g in groups],
                "groups_obj": [_partial(g) for g in groups],
                "roles": [],
                "roles_obj": [],
                "is_superuser": any(g.is_superuser for g in groups),
                "avatar": "/static/dist/assets/images/user_default.png",
                "date_joined": stamp,
                "last_updated": stamp,
                "password_change_date": stamp,
                "path": user.get("path", "users"),
                "type": user.get("type", "internal"),
                "uuid": str(uuid.UUID(int=pk)),
            }

    def update_user(self, pk: int, changes: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            if "username" in changes:
                self._forget_username(pk)
                self._usernames.setdefault(str(changes["username"]), set()).add(pk)
            self.users[pk].update(_deep_copy(dict(changes)))
            return self.serialize_user(pk)

    def delete_user(self, pk: int) -> None:
        with self.lock:
            self._forget_username(pk)
            del self.users[pk]
            if pk == self._last_user_pk:
                self._last_user_pk = max(self.users, default=0)
            for group_pk in list(self.index.member_of.get(pk, ())):
                group = self.groups[group_pk]
                users = list(group.users)
                users.remove(pk)
                self._set_links(group, "users", users)

    def _forget_username(self, pk: int) -> None:
        username = str(self.users[pk].get("username"))
        pks = self._usernames.get(username, set())
        pks.discard(pk)
        if not pks:
            self._usernames.pop(username, None)

    def add_member(self, record: GroupRecord, user_pk: int) -> None:
        """Append a user to a group's members, as an administrator's edit would."""
        with self.lock:
            self._set_links(record, "users", [*record.users, user_pk])

    # -- groups -------------------------------------------------------------------------------------
    def insert_group(self, fields: Mapping[str, Any]) -> GroupRecord:
        with self.lock:
            pk = str(uuid.uuid4())
            record = GroupRecord(pk=pk, num_pk=num_pk(pk), name=str(fields["name"]), seq=next(self._sequence))
            self.groups[record.pk] = record
            self._apply(record, fields)
            self.index.add(record.sort_key, record.attributes)
            return record

    def update_group(self, record: GroupRecord, fields: Mapping[str, Any]) -> None:
        with self.lock:
            # A group no longer stored (deleted meanwhile) changes alone, its indexes left as they are.
            reindex = ("name" in fields or "attributes" in fields) and self.groups.get(record.pk) is record
            if reindex:
                self.index.remove(record.sort_key, record.attributes)
            if "name" in fields:
                record.name = str(fields["name"])
            self._apply(record, fields)
            if reindex:
                self.index.add(record.sort_key, record.attributes)

    def _apply(self, record: GroupRecord, fields: Mapping[str, Any]) -> None:
        # Many-to-many fields and attributes are replaced wholesale, as the real serializer does.
        if "is_superuser" in fields:
            record.is_superuser = bool(fields["is_superuser"])
        if "attributes" in fields:
            record.attributes = _deep_copy(fields["attributes"])
        if "roles" in fields:
            record.roles = list(fields["roles"])
        for name in ("parents", "users"):
            if name in fields:
                self._set_links(record, name, list(fields[name]))

    def _set_links(self, record: GroupRecord, name: str, new: list[Any]) -> None:
        """Replace a group's ``parents`` or ``users``, and the links indexed from the other side."""
        old = set(getattr(record, name))
        setattr(record, name, new)
        if self.groups.get(record.pk) is not record:
            return
        link = self.index.link_parents if name == "parents" else self.index.link_users
        link(record.pk, old.difference(new), set(new).difference(old))

    def delete_group(self, pk: str) -> bool:
        with self.lock:
            record = self.groups.pop(pk, None)
            if record is None:
                return False
            self.builtin.discard(pk)
            self.index.remove(record.sort_key, record.attributes)
            self.index.link_parents(pk, record.parents, ())
            self.index.link_users(pk, record.users, ())
            for child_pk in self.index.children.pop(pk, set()):  # the parent link is a many-to-many row
                child = self.groups.get(child_pk)
                if child is not None and pk in child.parents:
                    child.parents.remove(pk)
            return True

    def group(self, pk: str) -> GroupRecord | None:
        with self.lock:
            return self.groups.get(pk)

    def group_named(self, name: str) -> GroupRecord | None:
        """The group called ``name`` (exact and case-sensitive); the oldest one, should several share it."""
        with self.lock:
            keys = self.index.with_name(name)
            return self.groups[keys[0][2]] if keys else None

    def all_groups(self) -> list[GroupRecord]:
        with self.lock:
            return list(self.groups.values())

    # -- ordered views (each sorted by name, then creation): what a listing pages through ---------------
    def ordered_groups(self) -> GroupView:
        return GroupView(self.index.ordered, self.groups)

    def groups_named(self, name: str) -> GroupView:
        return GroupView(self.index.with_name(name), self.groups)

    def groups_with_attribute(self, token: Token) -> GroupView:
        return GroupView(self.index.with_attribute(token), self.groups)

    # -- API shapes --------------------------------------------------------------------------------
    def serialize_group(
        self, record: GroupRecord, flags: Mapping[str, bool] = GROUP_INCLUDE_DEFAULTS
    ) -> dict[str, Any]:
        """The ``Group`` schema; ``*_obj`` fields are null unless their ``include_*`` flag is set."""
        with self.lock:
            linked = (self.groups[pk] for pk in self.index.children.get(record.pk, ()))
            children = sorted(linked, key=lambda g: g.sort_key)
            parents = [self.groups[pk] for pk in record.parents if pk in self.groups]
            return {
                "pk": record.pk,
                "num_pk": record.num_pk,
                "name": record.name,
                "is_superuser": record.is_superuser,
                "parents": [g.pk for g in parents],
                "parents_obj": [_related(g) for g in parents] if flags.get("include_parents") else None,
                "users": list(record.users),
                "users_obj": (
                    [dict(self.users[pk]) for pk in record.users if pk in self.users]
                    if flags.get("include_users", True)
                    else None
                ),
                "attributes": _deep_copy(record.attributes),
                "roles": list(record.roles),
                "roles_obj": [dict(self.roles[pk]) for pk in record.roles if pk in self.roles],
                "inherited_roles_obj": (
                    self._inherited_roles(record) if flags.get("include_inherited_roles") else None
                ),
                "children": [g.pk for g in children],
                "children_obj": [_related(g) for g in children] if flags.get("include_children") else None,
            }

    def _inherited_roles(self, record: GroupRecord) -> list[dict[str, Any]]:
        seen: set[str] = {record.pk}
        pending = list(record.parents)
        roles: dict[str, dict[str, Any]] = {}
        while pending:  # parents may form a cycle through out-of-band edits; visit each group once
            pk = pending.pop()
            ancestor = self.groups.get(pk)
            if pk in seen or ancestor is None:
                continue
            seen.add(pk)
            pending.extend(ancestor.parents)
            roles.update({r: dict(self.roles[r]) for r in ancestor.roles if r in self.roles})
        return list(roles.values())

    # -- reference checks used by validation ----------------------------------------------------------
    def check_user_pks(self, value: Any) -> list[int]:
        items = _list_of_items(value)
        out: list[int] = []
        for item in items:
            wrong_type = FieldError(f"Incorrect type. Expected pk value, received {type(item).__name__}.")
            if isinstance(item, bool) or not isinstance(item, int | str):
                raise wrong_type
            try:
                pk = int(item)
            except ValueError:
                raise wrong_type from None
            with self.lock:
                if pk not in self.users:
                    raise FieldError(f'Invalid pk "{item}" - object does not exist.')
            if pk not in out:
                out.append(pk)
        return out

    def check_uuid_pks(self, value: Any, known: Mapping[str, Any]) -> list[str]:
        out: list[str] = []
        for item in _list_of_items(value):
            if not isinstance(item, str):
                raise FieldError(f"Incorrect type. Expected pk value, received {type(item).__name__}.")
            pk = canonical_uuid(item)
            with self.lock:
                if pk is None or pk not in known:
                    raise FieldError(f'Invalid pk "{item}" - object does not exist.')
            if pk not in out:
                out.append(pk)
        return out


def _list_of_items(value: Any) -> Sequence[Any]:
    if not isinstance(value, list):
        raise FieldError(f'Expected a list of items but got type "{type(value).__name__}".')
    return value


def _partial(group: GroupRecord) -> dict[str, Any]:
    """The ``PartialGroup`` schema (a user's ``groups_obj`` entries)."""
    return {
        "pk": group.pk,
        "num_pk": group.num_pk,
        "name": group.name,
        "is_superuser": group.is_superuser,
        "attributes": _deep_copy(group.attributes),
    }


def _related(group: GroupRecord) -> dict[str, Any]:
    """The ``RelatedGroup`` schema (parents_obj / children_obj entries)."""
    return {
        "pk": group.pk,
        "group_uuid": group.pk,
        "name": group.name,
        "is_superuser": group.is_superuser,
        "attributes": _deep_copy(group.attributes),
    }


def _deep_copy(value: Any) -> Any:
    # Callers get JSON they may mutate without touching the stored record.
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value
