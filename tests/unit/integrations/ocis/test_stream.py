"""Reading an oCIS collection answer as a stream: entries as they complete, in any chunking, shape checked."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tenantry.integrations.ocis.errors import OcisResponseError
from tenantry.integrations.ocis.stream import CollectionReader

DRIVES = {
    "value": [
        {"id": "a", "name": "Acme", "description": "[tenantry:tenant:1]", "quota": {"total": 10, "used": 0.0}},
        {"id": "b", "name": "Beta", "description": None, "root": {"deleted": {"state": "trashed"}}},
        {"id": "c", "name": 'Gamma \u00e9 "q"', "description": "x"},
    ],
    "@odata.context": "whatever comes after",
}


def read(body: bytes, size: int) -> list[Any]:
    reader = CollectionReader(200)
    items: list[Any] = []
    for start in range(0, len(body), size):
        items += reader.feed(body[start : start + size])
    return items + reader.close()


@pytest.mark.parametrize("size", [1, 7, 64, 1 << 20])
def test_entries_come_out_whole_whatever_the_chunking(size: int) -> None:
    body = json.dumps(DRIVES).encode()

    assert read(body, size) == DRIVES["value"]


def test_entries_are_handed_back_as_they_complete_not_at_the_end() -> None:
    reader = CollectionReader(200)
    body = json.dumps(DRIVES).encode()
    first_end = body.index(b"}}") + 3  # past the first entry's closing brace

    assert reader.feed(body[:first_end]) == [DRIVES["value"][0]]


@pytest.mark.parametrize("body", [b"null", b"{}", b'{"value": null}', b'{"value": []}', b' {"@odata.context": "x"} '])
def test_an_empty_collection_may_come_in_several_forms(body: bytes) -> None:
    assert read(body, 3) == []


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"[1, 2]", "something other than an object"),
        (b'"drives"', "something other than an object"),
        (b'{"value": {"id": "a"}}', "value is not a list"),
        (b'{"value": 3}', "value is not a list"),
        (b"<html>bad gateway</html>", "not JSON"),
        (b'{"value": [{"id": "a"', "not JSON"),
        (b"", "not JSON"),
    ],
)
def test_anything_else_is_an_error_that_says_what_came(body: bytes, words: str) -> None:
    with pytest.raises(OcisResponseError, match=words) as raised:
        read(body, 5)

    assert raised.value.status == 200
