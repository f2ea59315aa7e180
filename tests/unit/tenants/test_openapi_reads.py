"""The OpenAPI document of the tenant reads is unchanged by how their answers are written: the operations of
``GET /tenants`` and ``GET /tenants/{slug}`` and every schema they reference, held to a snapshot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tenantry.app import create_app
from tenantry.config import Settings

SNAPSHOT = Path(__file__).with_name("snapshots") / "openapi_tenant_reads.json"
READS = (("/tenants", "get"), ("/tenants/{slug}", "get"))


def referenced(node: Any) -> set[str]:
    """The names of the component schemas ``node`` refers to directly."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        found = {ref.rsplit("/", 1)[1]} if isinstance(ref, str) else set()
        return found.union(*(referenced(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(referenced(v) for v in node))
    return set()


def reads_document(document: dict[str, Any]) -> dict[str, Any]:
    """The read operations and, transitively, the component schemas they use."""
    operations = {f"{method} {path}": document["paths"][path][method] for path, method in READS}
    schemas = document["components"]["schemas"]
    names: set[str] = set()
    todo = referenced(operations)
    while todo:
        name = todo.pop()
        if name not in names:
            names.add(name)
            todo |= referenced(schemas[name])
    return {"operations": operations, "schemas": {name: schemas[name] for name in sorted(names)}}


def test_the_reads_and_the_schemas_they_reference_are_documented_exactly_as_before() -> None:
    document = json.loads(json.dumps(create_app(Settings(auth_enabled=False)).openapi()))
    now = reads_document(document)

    assert {"TenantPage", "TenantOut", "StepCondition", "ErrorOut"} <= set(now["schemas"])
    assert now == json.loads(SNAPSHOT.read_text(encoding="utf-8"))
