"""Opaque page cursors: the sort key of the last row of a page, as URL-safe text, checked when read back."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from tenantry.errors import InvalidInputError


def encode_cursor(*key: str) -> str:
    raw = json.dumps(list(key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *, field: str, size: int) -> list[str]:
    """The ``size`` strings a cursor holds; a 422 naming ``field`` for anything a page did not hand out."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, TypeError) as err:
        raise _not_a_cursor(field) from err
    if not isinstance(key, list) or len(key) != size or not all(isinstance(part, str) for part in key):
        raise _not_a_cursor(field)
    return key


def encode_created_cursor(created_at: datetime, tenant_id: str) -> str:
    """The cursor after a tenant in the (created_at, id) order."""
    return encode_cursor(created_at.isoformat(), tenant_id)


def decode_created_cursor(cursor: str, *, field: str = "cursor") -> tuple[datetime, str]:
    created, tenant_id = decode_cursor(cursor, field=field, size=2)
    try:
        at = datetime.fromisoformat(created)
    except ValueError as err:
        raise _not_a_cursor(field) from err
    if at.tzinfo is None:
        raise _not_a_cursor(field)
    return at, tenant_id


def _not_a_cursor(field: str) -> InvalidInputError:
    return InvalidInputError([{"field": field, "message": "is not a cursor from a previous page"}])
