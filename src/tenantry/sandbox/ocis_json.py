"""Request bodies read the way Graph reads them: Go's encoding/json with ``DisallowUnknownFields``.

Graph decodes bodies into the libre-graph-api-go structs (services/graph/pkg/service/v0/utils.go
``StrictJSONUnmarshal``). That decoder matches object keys to struct fields case-insensitively (an exact
match first), refuses an unknown key, leaves a field sent as ``null`` at its zero value, refuses a value of
the wrong JSON type (a float or ``1e3`` for an int64, a number for a string), reads only the first JSON value
of the body, and reports the first problem in document order. :func:`decode` does the same (a ``null`` field
comes back as None) and raises :class:`GoJSONError` with the text Go would produce.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class GoJSONError(Exception):
    """A body Go's decoder refuses; ``message`` is Go's error text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Pairs(list[tuple[str, Any]]):
    """A JSON object, its members in document order (duplicates kept, as Go sees them)."""


class _Fraction(str):
    """A JSON number with a fraction or exponent, kept as written (Go refuses it for an integer field)."""


@dataclass(frozen=True)
class Struct:
    """A Go struct: its type name (for messages) and its JSON fields, each a kind or a nested ``Struct``."""

    name: str
    fields: Mapping[str, str | Struct | ArrayOf] = field(default_factory=dict)


@dataclass(frozen=True)
class ArrayOf:
    """A Go slice of structs, each element read like a nested struct."""

    item: Struct


# Kinds: "string", "int64", "bool", "time", "strings" ([]string); "object:<Go type>" and "array:<Go type>"
# are nested values Graph reads but the sandbox does not look into (only their JSON type is checked).
_GO_TYPES = {"string": "string", "int64": "int64", "bool": "bool", "time": "time.Time", "strings": "[]string"}


def decode(raw: bytes, struct: Struct) -> dict[str, Any]:
    """The fields of the first JSON value in ``raw``, keyed by their canonical names."""
    value = read_value(raw)
    errors: list[str] = []
    out = _decode_struct(value, struct, struct.name, "", errors)
    if errors:
        raise GoJSONError(errors[0])
    return out


def read_value(raw: bytes) -> Any:
    """The first JSON value of ``raw`` (objects as :class:`_Pairs`); trailing bytes are ignored, as Go does."""
    text = raw.decode("utf-8", errors="replace")
    stripped = text.lstrip(" \t\r\n")
    if not stripped:
        raise GoJSONError("EOF")
    decoder = json.JSONDecoder(object_pairs_hook=_Pairs, parse_float=_Fraction, parse_constant=_refuse_constant)
    try:
        value, _end = decoder.raw_decode(stripped)
    except json.JSONDecodeError as err:
        if err.pos >= len(stripped):
            raise GoJSONError("unexpected EOF") from err
        raise GoJSONError(f"invalid character {stripped[err.pos]!r} looking for beginning of value") from err
    return value


def object_keys(value: Any) -> set[str] | None:
    """The keys of a decoded JSON object exactly as written, or None when ``value`` is no object."""
    return {key for key, _ in value} if isinstance(value, _Pairs) else None


def _refuse_constant(name: str) -> Any:
    raise GoJSONError(f"invalid character {name[0]!r} looking for beginning of value")


def _json_type(value: Any) -> str:
    if isinstance(value, _Pairs):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | _Fraction):
        return "number"
    return "string"


def _type_error(value: Any, go_type: str, root: str, path: str) -> str:
    where = f"Go struct field {root}.{path}" if path else "Go value"
    found = _json_type(value)
    if go_type == "int64" and found == "number":
        found = f"number {value}"  # Go quotes the literal that does not fit an integer
    return f"json: cannot unmarshal {found} into {where} of type {go_type}"


def _match(key: str, fields: Mapping[str, str | Struct | ArrayOf]) -> str | None:
    if key in fields:
        return key
    folded = key.casefold()
    return next((name for name in fields if name.casefold() == folded), None)


def _decode_struct(value: Any, struct: Struct, root: str, path: str, errors: list[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, _Pairs):
        errors.append(_type_error(value, f"libregraph.{struct.name}", root, path))
        return {}
    out: dict[str, Any] = {}
    for key, item in value:
        name = _match(key, struct.fields)
        if name is None:
            errors.append(f"json: unknown field {json.dumps(key)}")
            continue
        kind = struct.fields[name]
        sub = f"{path}.{name}" if path else name
        if item is None:
            out[name] = None  # Go leaves the field at its zero value; a nullable one knows it was sent
        elif isinstance(kind, Struct):
            out[name] = _decode_struct(item, kind, root, sub, errors)
        elif isinstance(kind, ArrayOf):
            if isinstance(item, list) and not isinstance(item, _Pairs):
                out[name] = [_decode_struct(x, kind.item, root, sub, errors) for x in item]
            else:
                errors.append(_type_error(item, f"[]libregraph.{kind.item.name}", root, sub))
        else:
            ok, converted = _convert(item, kind)
            if ok:
                out[name] = converted
            else:
                errors.append(_field_error(item, kind, root, sub))
    return out


def _field_error(item: Any, kind: str, root: str, path: str) -> str:
    if kind == "time" and isinstance(item, str):
        return f'parsing time "\\"{item}\\"" as "\\"2006-01-02T15:04:05Z07:00\\"": cannot parse "{item}\\"" as "2006"'
    if kind == "strings" and isinstance(item, list):
        bad = next(x for x in item if not isinstance(x, str) or isinstance(x, _Fraction))
        return _type_error(bad, "string", root, path)
    go_type = _GO_TYPES.get(kind) or kind.split(":", 1)[1]
    return _type_error(item, go_type, root, path)


def _convert(item: Any, kind: str) -> tuple[bool, Any]:  # noqa: PLR0911 - one case per kind reads best
    if kind == "string":
        return isinstance(item, str) and not isinstance(item, _Fraction), str(item)
    if kind == "int64":
        ok = isinstance(item, int) and not isinstance(item, bool) and INT64_MIN <= item <= INT64_MAX
        return ok, item
    if kind == "bool":
        return isinstance(item, bool), item
    if kind == "time":
        return isinstance(item, str) and not isinstance(item, _Fraction) and _is_rfc3339(item), item
    if kind == "strings":
        ok = isinstance(item, list) and not isinstance(item, _Pairs)
        return ok and all(isinstance(x, str) and not isinstance(x, _Fraction) for x in item), item
    if kind.startswith("object:"):
        return isinstance(item, _Pairs), plain(item)
    return isinstance(item, list) and not isinstance(item, _Pairs), plain(item)


def _is_rfc3339(text: str) -> bool:
    if len(text) < 20 or text[10] not in "Tt":
        return False
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return False
    return parsed.tzinfo is not None


def plain(value: Any) -> Any:
    """A decoded value with objects turned into dicts (the last duplicate key wins, as in Go)."""
    if isinstance(value, _Pairs):
        return {key: plain(item) for key, item in value}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, _Fraction):
        return float(value)
    return value
