"""Values of the sandbox Stalwart objects checked against their property definitions, masked and patched."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from tenantry.sandbox.stalwart_model import Prop, Resolver, Shape, invalid_patch

MASK = "****"


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
            raise invalid_patch(f"{path}/{key}", "Invalid property")
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


def with_nulls(props: Mapping[str, Prop], value: Mapping[str, Any]) -> dict[str, Any]:
    """``value`` as upstream reads it back: every unset nullable property present as null, nested ones too.

    Upstream serialises its structs whole (``IntoValue`` in structs_impl.rs), so an unset ``Option`` reads
    as ``null`` rather than being left out (a new domain has ``"description": null``).
    """
    out = dict(value)
    for key, prop in props.items():
        item = out.get(key)
        if item is None:
            if key not in out and prop.nullable and prop.shown_when_null and not prop.server_set:
                out[key] = None
            continue
        if prop.shape is None or not isinstance(item, dict):
            continue
        if prop.kind == "list":
            out[key] = {k: _shape_nulls(prop.shape, v) for k, v in item.items()}
        else:
            out[key] = _shape_nulls(prop.shape, item)
    return out


def _shape_nulls(shape: Shape, value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    fields = shape.variants.get("" if shape.plain else str(value.get("@type")), {})
    return with_nulls(fields, value)


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
