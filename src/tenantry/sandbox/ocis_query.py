"""The query options of the drive listings, checked as Graph checks them (godata v1.0.10, then drives.go).

``godata.ParseRequest`` runs first, in strict mode: an unknown parameter, a repeated one, an unparsable
``$filter``/``$orderby``/``$top``/``$skip``/``$count`` or any ``$format`` is a 400 ``invalidRequest`` whose
message is godata's. Only then does ``generateCs3Filters`` look at the filter: one ``eq`` on ``driveType`` or
``id`` filters, an ``eq`` on anything else is ignored, and any other root operator is a 501 ``notSupported``.
``sortSpaces`` runs after the listing: only a single ``name`` or ``lastModifiedDateTime`` item sorts, another
single item is a 400, several items are ignored.

The filter grammar here is a small precedence parser covering what godata accepts for these lists; its
parse-error wording is the sandbox's own (godata's differs per case).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from tenantry.sandbox.ocis_errors import GraphError

SUPPORTED = frozenset(
    {"$filter", "$apply", "$expand", "$select", "$orderby", "$top", "$skip", "$count", "$inlinecount"}
    | {"$search", "$format", "at", "tags"}
)
_BINARY = {
    "or": 1,
    "and": 2,
    **dict.fromkeys(("eq", "ne", "gt", "ge", "lt", "le", "has", "in"), 3),
    **dict.fromkeys(("add", "sub"), 4),
    **dict.fromkeys(("mul", "div", "divby", "mod"), 5),
}
_BOOLEAN_ROOTS = frozenset({"or", "and", "not", "eq", "ne", "gt", "ge", "lt", "le", "has", "in", "true", "false"})
_BOOLEAN_FUNCTIONS = frozenset(
    {"contains", "startswith", "endswith", "any", "all", "isof", "geo.intersects", "hassubset", "hassubsequence"}
)
_TOKEN = re.compile(r"\s*(?:('(?:[^']|'')*')|([(),])|([^\s(),']+))")
_GO_BOOL = {"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"}


@dataclass
class Node:
    value: str
    children: list[Node] = field(default_factory=list)


@dataclass(frozen=True)
class DriveQuery:
    """What the listing does: keep spaces whose ``prop`` equals ``value``, then sort by ``order``."""

    prop: str | None = None
    value: str | None = None
    order: str | None = None
    descending: bool = False


def invalid(message: str) -> GraphError:
    return GraphError(400, "invalidRequest", message)


def parse_drive_query(params: Sequence[tuple[str, str]]) -> DriveQuery:
    """Check the listing's query string as Graph does and say what to filter and sort by."""
    get = _single_values(params)
    tree = parse_filter(get["$filter"]) if get.get("$filter") else None
    items = parse_order_by(get["$orderby"]) if get.get("$orderby") else []
    _check_scalars(get)
    prop: str | None = None
    value: str | None = None
    if tree is not None:
        if tree.value != "eq":
            raise GraphError(501, "notSupported", f"unsupported filter operand: {tree.value}")
        if tree.children[0].value in {"driveType", "id"}:
            prop, value = tree.children[0].value, tree.children[1].value.strip("'")
    if len(items) != 1:
        return DriveQuery(prop, value)
    order, descending = items[0]
    if order not in {"name", "lastModifiedDateTime"}:
        raise invalid(f"we do not support <{order}> as a order parameter")
    return DriveQuery(prop, value, order, descending)


def _single_values(params: Sequence[tuple[str, str]]) -> dict[str, str]:
    """godata's strict mode: every parameter known and given once; the value of each."""
    seen: dict[str, list[str]] = {}
    for key, value in params:
        seen.setdefault(key, []).append(value)
    for key, values in seen.items():
        if key not in SUPPORTED:
            text = f"Query parameter '{key}' is not supported"
            raise invalid(f"{text}. Cause: {text}")
        if len(values) > 1:
            text = f"Query parameter '{key}' cannot be specified more than once"
            raise invalid(f"{text}. Cause: {text}")
    return {key: values[0] for key, values in seen.items()}


def _check_scalars(get: dict[str, str]) -> None:
    for key in ("$top", "$skip"):
        if get.get(key) and not re.fullmatch(r"[+-]?\d+", get[key]):
            raise invalid(f'strconv.Atoi: parsing "{get[key]}": invalid syntax')
    if get.get("$count") and get["$count"] not in _GO_BOOL:
        raise invalid(f'strconv.ParseBool: parsing "{get["$count"]}": invalid syntax')
    if get.get("$format"):
        raise invalid("Format is not supported")


def parse_order_by(text: str) -> list[tuple[str, bool]]:
    """godata's ``ParseOrderByString``: comma-separated items, each an expression and an optional asc/desc."""
    items: list[tuple[str, bool]] = []
    for raw in text.split(","):
        item = raw.strip()
        lowered = item.lower()
        descending = lowered.endswith(" desc")
        if descending or lowered.endswith(" asc"):
            item = item[: -(5 if descending else 4)].strip()
        try:
            _parse_expression(item)
        except ValueError as err:
            raise invalid(f"Invalid $orderby query option. Cause: {err}") from err
        items.append((item, descending))
    return items


def parse_filter(text: str) -> Node:
    """The parse tree of a ``$filter``; a 400 when it does not parse or is not a boolean expression."""
    try:
        tree = _parse_expression(text)
    except ValueError as err:
        raise invalid(str(err)) from err
    if not (tree.value in _BOOLEAN_ROOTS or (tree.value.lower() in _BOOLEAN_FUNCTIONS and tree.children)):
        raise invalid("Value must be a boolean expression")
    return tree


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    while position < len(text.rstrip()):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ValueError(f"Invalid token at position {position} in {text!r}")
        tokens.append(match.group(match.lastindex or 0))
        position = match.end()
    return tokens


def _parse_expression(text: str) -> Node:
    tokens = _tokens(text)
    if not tokens:
        raise ValueError("Empty expression")
    node, rest = _parse(tokens, 0, 0)
    if rest != len(tokens):
        raise ValueError(f"Unexpected token {tokens[rest]!r} in {text!r}")
    return node


def _parse(tokens: list[str], at: int, min_precedence: int) -> tuple[Node, int]:
    left, at = _primary(tokens, at)
    while at < len(tokens) and _BINARY.get(tokens[at], 0) > min_precedence:
        operator = tokens[at]
        right, at = _parse(tokens, at + 1, _BINARY[operator])
        left = Node(operator, [left, right])
    return left, at


def _primary(tokens: list[str], at: int) -> tuple[Node, int]:
    if at >= len(tokens):
        raise ValueError("Unexpected end of expression")
    token = tokens[at]
    if token == "(":  # noqa: S105 - a token of the filter grammar, not a secret
        node, at = _parse(tokens, at + 1, 0)
        if at >= len(tokens) or tokens[at] != ")":
            raise ValueError("Unmatched parenthesis")
        return node, at + 1
    if token in {")", ","} or token in _BINARY:
        raise ValueError(f"Unexpected token {token!r}")
    if token == "not":  # noqa: S105 - a token of the filter grammar, not a secret
        operand, at = _parse(tokens, at + 1, 5)
        return Node("not", [operand]), at
    if at + 1 < len(tokens) and tokens[at + 1] == "(" and not token.startswith("'"):
        return _call(tokens, token, at + 2)
    return Node(token), at + 1


def _call(tokens: list[str], name: str, at: int) -> tuple[Node, int]:
    node = Node(name)
    if at < len(tokens) and tokens[at] == ")":
        return node, at + 1
    while True:
        argument, at = _parse(tokens, at, 0)
        node.children.append(argument)
        if at < len(tokens) and tokens[at] == ",":
            at += 1
            continue
        if at < len(tokens) and tokens[at] == ")":
            return node, at + 1
        raise ValueError(f"Unterminated call of {name}")
