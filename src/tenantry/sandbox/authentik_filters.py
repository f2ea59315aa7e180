"""The filters and ordering of the authentik sandbox's group list (GroupFilter, DRF's Search and Ordering filters).

A listing in the default order reads the smallest indexed source that holds every match (the groups of one
name, or of one attribute value) and, when that source is the answer itself, pages it without copying it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import QueryParams

from tenantry.sandbox.authentik_drf import ApiError, filter_bool
from tenantry.sandbox.authentik_index import attribute_token
from tenantry.sandbox.authentik_store import Directory, GroupRecord

# DRF's OrderingFilter takes the serializer's model fields; num_pk is a model property and is ignored.
_SORT_KEYS: dict[str, Callable[[GroupRecord], Any]] = {
    "name": lambda g: g.name,
    "is_superuser": lambda g: g.is_superuser,
    "pk": lambda g: g.pk,
}
_DEFAULT_ORDERING = ("name",)
_SEARCH_SPLIT = re.compile(r"[\s,]+")
Lookup = tuple[list[str], Any]


@dataclass(frozen=True)
class GroupQuery:
    """The filters of one ``GET /core/groups/``, each None (or empty) when the request leaves it out."""

    name: str | None
    lookups: list[Lookup] | None
    superuser: bool | None
    members: set[int] | None
    terms: list[str]

    @classmethod
    def parse(cls, params: QueryParams, directory: Directory) -> GroupQuery:
        """Read the filters, refusing a bad one with DRF's 400 (the attributes filter is checked first)."""
        raw = params.get("attributes")
        return cls(
            name=params.get("name") or None,  # exact and case-sensitive
            lookups=parse_attribute_filter(raw) if raw else None,
            superuser=filter_bool(params.get("is_superuser")),
            members=member_pks(params, directory),
            terms=[t for t in _SEARCH_SPLIT.split(params.get("search", "").replace("\x00", "")) if t],
        )

    def matches(self, group: GroupRecord) -> bool:
        return (
            (self.name is None or group.name == self.name)
            and (self.lookups is None or all(_lookup_equals(group.attributes, p, v) for p, v in self.lookups))
            and (self.superuser is None or group.is_superuser is self.superuser)
            and (self.members is None or not self.members.isdisjoint(group.users))
            and all(_searched(group, term) for term in self.terms)
        )

    def _conditions(self) -> int:
        return (
            (self.name is not None)
            + len(self.lookups or ())
            + (self.superuser is not None)
            + (self.members is not None)
            + len(self.terms)
        )

    def select(self, directory: Directory, ordering: str) -> Sequence[GroupRecord]:
        """The matching groups in the order the listing shows them. Call it holding the directory's lock."""
        terms = ordering_terms(ordering)
        if terms not in ([], ["name"]):
            return _ordered([g for g in directory.all_groups() if self.matches(g)], terms)
        # Every source is sorted by name then creation, which is the default order (a stable sort by name
        # of the groups in creation order), so a filtered walk of one needs no sort.
        sources: list[Sequence[GroupRecord]] = []
        if self.name is not None:
            sources.append(directory.groups_named(self.name))
        for path, value in self.lookups or ():
            token = attribute_token(path[0], value) if len(path) == 1 else None
            if token is not None:
                sources.append(directory.groups_with_attribute(token))
        conditions = self._conditions()
        if conditions == 1 and sources:
            return sources[0]  # the only condition is the source's own: it is the answer
        source = min([*sources, directory.ordered_groups()], key=len)
        return source if conditions == 0 else [g for g in source if self.matches(g)]


def member_pks(params: QueryParams, directory: Directory) -> set[int] | None:
    """Users named by ``members_by_pk``/``members_by_username`` (any of them matches), None if unset.

    Django's ModelMultipleChoiceField: a pk that is not a number is not a valid value; one that names
    no user (compared as text, so ``01`` is not ``1``) is not a valid choice. Both fields report.
    """
    by_pk = [v for v in params.getlist("members_by_pk") if v]
    by_name = [v for v in params.getlist("members_by_username") if v]
    if not by_pk and not by_name:
        return None
    pks: set[int] = set()
    errors: dict[str, list[str]] = {}
    for param, values in (("members_by_pk", by_pk), ("members_by_username", by_name)):
        for value in values:
            if param == "members_by_pk":
                number = _int_or_none(value)
                if number is None:
                    errors[param] = [f"\u201c{value}\u201d is not a valid value."]
                    break
                # The choice is compared as text: "01" or "+1" is not the pk 1.
                found = number if str(number) == value and directory.has_user(number) else None
            else:
                found = directory.user_named(value)
            if found is None:
                errors[param] = [f"Select a valid choice. {value} is not one of the available choices."]
                break
            pks.add(found)
    if errors:
        raise ApiError(400, errors)
    return pks


def parse_attribute_filter(raw: str) -> list[Lookup]:
    """The ``attributes`` filter: a JSON object whose keys (``__`` walks into nested values) must all equal the
    group's values; each key becomes its path and the value wanted there."""
    # GroupFilter.filter_attributes raises a DRF ValidationError with a plain string, which DRF answers as
    # a bare JSON list, not under the parameter's name.
    try:
        wanted = json.loads(raw)
    except ValueError:
        raise ApiError(400, ["filter: failed to parse JSON"]) from None
    if not isinstance(wanted, dict):
        raise ApiError(400, ["filter: value must be key:value mapping"])
    return [(key.split("__"), value) for key, value in wanted.items()]


def attribute_matcher(raw: str) -> Callable[[Mapping[str, Any]], bool]:
    """The ``attributes`` filter as a test of a group's attributes, with JSON types respected (``42`` is not
    ``"42"``, ``true`` is not ``1``)."""
    lookups = parse_attribute_filter(raw)

    def matches(attributes: Mapping[str, Any]) -> bool:
        return all(_lookup_equals(attributes, path, value) for path, value in lookups)

    return matches


def _lookup_equals(attributes: Mapping[str, Any], path: list[str], wanted: Any) -> bool:
    node: Any = attributes
    for segment in path:
        if isinstance(node, dict) and segment in node:
            node = node[segment]
        elif isinstance(node, list) and segment.isdigit() and int(segment) < len(node):
            node = node[int(segment)]  # a numeric segment indexes a JSON array, as a key transform does
        else:
            return False
    return json_equal(node, wanted)


def json_equal(left: Any, right: Any) -> bool:
    """Equality of two JSON values as the database compares them: no bool/number or number/string mixing."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left is right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(json_equal(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    if type(left) is not type(right):
        return False
    return bool(left == right)


def ordering_terms(ordering: str) -> list[str]:
    """The ``ordering`` terms that name a sortable field; unknown terms are ignored, as DRF's OrderingFilter
    does (none left means the default order)."""
    return [t.strip() for t in ordering.split(",") if t.strip().lstrip("-") in _SORT_KEYS]


def _ordered(groups: list[GroupRecord], terms: list[str]) -> list[GroupRecord]:
    out = list(groups)
    for term in reversed(terms or list(_DEFAULT_ORDERING)):  # stable sorts, least significant first
        out.sort(key=_SORT_KEYS[term.lstrip("-")], reverse=term.startswith("-"))
    return out


def _searched(group: GroupRecord, term: str) -> bool:
    # DRF's SearchFilter over search_fields ["name", "is_superuser"]: icontains on the name or on the flag
    # as PostgreSQL prints a boolean, so "rue" finds every superuser group.
    folded = term.casefold()
    return folded in group.name.casefold() or folded in ("true" if group.is_superuser else "false")


def _int_or_none(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None
