"""Reading a collection answer (``{"value": [...]}``) as it arrives, one entry at a time (ijson, C parser)."""

from __future__ import annotations

from typing import Any

import ijson

from .errors import OcisResponseError

_ITEMS = "value.item"


class CollectionReader:
    """Feed it the body's chunks; it hands back the entries of ``value`` completed so far.

    The shape is checked on the way (only the start of the body is looked at for that): the top level must be
    an object or null, and ``value`` a list, null or absent. Entries are plain JSON values (floats as float).
    """

    def __init__(self, status: int) -> None:
        self._status = status
        self._items = ijson.sendable_list()
        self._parser = ijson.items_coro(self._items, _ITEMS, use_float=True)
        self._events = ijson.sendable_list()
        self._shape: Any = ijson.parse_coro(self._events)
        self._shape_known = False
        self._top_seen = False

    def feed(self, chunk: bytes) -> list[Any]:
        if not chunk:
            return []
        if not self._shape_known:
            self._check_shape(chunk)
        try:
            self._parser.send(chunk)
        except ijson.JSONError as err:
            raise self._not_json() from err
        return self._take()

    def close(self) -> list[Any]:
        try:
            self._parser.close()
            if not self._shape_known:
                self._shape.close()
                self._judge(final=True)
        except ijson.JSONError as err:  # includes an empty or truncated body
            raise self._not_json() from err
        return self._take()

    def _take(self) -> list[Any]:
        done = list(self._items)
        del self._items[:]
        return done

    def _check_shape(self, chunk: bytes) -> None:
        try:
            self._shape.send(chunk)
        except ijson.JSONError as err:
            raise self._not_json() from err
        self._judge(final=False)

    def _judge(self, *, final: bool) -> None:
        """Decide from the parse events seen so far whether the answer is a collection (and stop looking)."""
        for prefix, event, _value in self._events:
            if not self._top_seen:
                self._top_seen = True
                if event == "null":  # a JSON null: an empty collection
                    self._shape_known = True
                    return
                if event != "start_map":
                    raise OcisResponseError(
                        "oCIS answered a collection request with something other than an object", status=self._status
                    )
                continue
            if prefix == "value" and event in {"start_array", "null"}:
                self._shape_known = True
                return
            if prefix == "value" and event != "map_key":
                raise OcisResponseError(
                    "oCIS answered with a collection whose value is not a list", status=self._status
                )
        del self._events[:]
        if final:
            self._shape_known = True  # an object without "value": an empty collection

    def _not_json(self) -> OcisResponseError:
        return OcisResponseError(f"oCIS answered {self._status} with a body that is not JSON", status=self._status)
