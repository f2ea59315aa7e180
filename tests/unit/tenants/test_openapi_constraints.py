"""The OpenAPI document states the constraints the API enforces: the same values pass its schemas and the
validators, for the slug, the name, the mail domain, the quota and an admin's sub."""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel, TypeAdapter, ValidationError

from tenantry.app import create_app
from tenantry.config import Settings
from tenantry.tenants.routes import SubPath
from tenantry.tenants.schemas import HIDDEN_RANGES, DomainSwitchIn, TenantCreate, TenantUpdate


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    doc: dict[str, Any] = create_app(Settings(auth_enabled=False)).openapi()
    # Through JSON, as a client reads it (the patterns hold characters written as escapes).
    return dict(json.loads(json.dumps(doc)))


def body_field(document: dict[str, Any], model: str, field: str) -> dict[str, Any]:
    """The schema of one field of a request body, without the ``null`` an optional field also allows."""
    schema: dict[str, Any] = document["components"]["schemas"][model]["properties"][field]
    branches = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    assert len(branches) == 1, schema
    return {**branches[0], **{k: v for k, v in schema.items() if k not in ("anyOf", "default", "title")}}


def path_parameter(document: dict[str, Any], path: str, method: str, name: str) -> dict[str, Any]:
    parameters = document["paths"][path][method]["parameters"]
    schema: dict[str, Any] = next(p["schema"] for p in parameters if p["name"] == name and p["in"] == "path")
    return schema


def accepted_by_model(model: type[BaseModel], base: dict[str, Any], field: str) -> Callable[[object], bool]:
    def check(value: object) -> bool:
        try:
            model.model_validate_json(json.dumps({**base, field: value}))
        except ValidationError as err:
            # Refused if the problem is the field, or the JSON holding it (a lone surrogate cannot be read).
            return not any(e["loc"][:1] in ((field,), ()) for e in err.errors())
        return True

    return check


def as_python(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its pattern as Python reads ECMA-262's: there ``$`` is the end of the input, where
    Python's also matches before a final newline."""
    pattern = schema.get("pattern")
    if pattern is None or not pattern.endswith("$"):
        return schema
    return {**schema, "pattern": pattern[:-1] + r"\Z"}


def disagreements(schema: dict[str, Any], accepts: Callable[[object], bool], values: Iterable[object]) -> list[Any]:
    documented = Draft202012Validator(as_python(schema))
    return [(v, documented.is_valid(v), accepts(v)) for v in values if documented.is_valid(v) != accepts(v)]


def around_each_hidden_range() -> list[str]:
    """Names holding the first and last character of every hidden range, and the neighbours of each."""
    code_points = {cp for a, b in HIDDEN_RANGES for cp in (a - 1, a, b, b + 1) if 0 <= cp <= sys.maxunicode}
    return [f"Acme{chr(cp)}" for cp in sorted(code_points)] + [f"{chr(cp)}Acme" for cp in sorted(code_points)]


SLUGS = [
    "acme", "abc", "a1b", "0ab", "a-b", "a" * 63, "a" * 64, "ab", "", "-acme", "acme-", "Acme", "ac_me", "ac me",
    "ab--cd", "xn--zz", "a--b", "abc--", "ac\x00me", "acme\n", "ąbc", "\uff41\uff43\uff4d\uff45",
]  # fmt: skip
NAMES = [
    "Acme", "A", "", " ", "   Acme  ", "x" * 200, "x" * 201, "  " + "x" * 199, "Bücher & Co", "株式会社",
    "Team \U0001fae8", "Acme\u202egnp.exe", "Ac\u200bme", "Acme\n", "\u3000", "\u00a0", "Acme\u00a0",
    "Acme\ue000", "Acme\U000e0041", "\ufffe", "Acme\x85", "Acme\ufffd", "Acme\u2028", "\t",
    *around_each_hidden_range(),
]  # fmt: skip
QUOTAS = [1, 2, 10 * 1024**3, 2**53, 2**53 + 1, 0, -1, "100", True, False, 1.5, [1], {"b": 1}, 1e300]
SUBS = [
    "abc", "a", "a" * 255, "a" * 256, "", "a b", "a\x00b", "a\x1bb", "ab\x7f", "\ufffd", "ab\ufffd", "a\tb",
    "\u3000", "user@example.com", "ü", "b7d1a2c4" * 8, "a/b", "\u200b",
]  # fmt: skip
DOMAINS_ACCEPTED = ["acme.example", "ACME.Example.", "bücher.example", " acme.example ", "a" * 63 + ".example"]
DOMAINS_REFUSED = ["", "a" * 254, ("a" * 62 + ".") * 4 + "example", "ü" * 60 + "." + "ü" * 60 + ".example", "example"]


@pytest.mark.parametrize(
    ("model", "base"),
    [(TenantCreate, {"name": "Acme"})],
)
def test_the_slug_pattern_and_lengths_are_what_the_validator_enforces(
    document: dict[str, Any], model: type[BaseModel], base: dict[str, Any]
) -> None:
    schema = body_field(document, model.__name__, "slug")
    assert {"pattern", "minLength", "maxLength"} <= set(schema)
    assert disagreements(schema, accepted_by_model(model, base, "slug"), SLUGS) == []


@pytest.mark.parametrize(
    ("model", "base"),
    [(TenantCreate, {"slug": "acme"}), (TenantUpdate, {})],
)
def test_the_name_pattern_and_lengths_are_what_the_validator_enforces(
    document: dict[str, Any], model: type[BaseModel], base: dict[str, Any]
) -> None:
    schema = body_field(document, model.__name__, "name")
    assert {"pattern", "minLength", "maxLength"} <= set(schema)
    assert disagreements(schema, accepted_by_model(model, base, "name"), NAMES) == []


@pytest.mark.parametrize(
    ("model", "base"),
    [(TenantCreate, {"slug": "acme", "name": "Acme"}), (TenantUpdate, {})],
)
def test_the_quota_bounds_are_what_the_validator_enforces(
    document: dict[str, Any], model: type[BaseModel], base: dict[str, Any]
) -> None:
    schema = body_field(document, model.__name__, "quotaBytes")
    assert schema["type"] == "integer"
    assert {"exclusiveMinimum", "maximum"} <= set(schema)
    accepts = accepted_by_model(model, base, "quotaBytes")
    assert disagreements(schema, accepts, QUOTAS) == []
    # JSON Schema counts 1.0 as an integer and cannot say otherwise; the API refuses it, and says so.
    assert Draft202012Validator(schema).is_valid(1.0)
    assert not accepts(1.0)
    assert "1.0" in schema["description"]


@pytest.mark.parametrize(
    ("model", "base"),
    [(TenantCreate, {"slug": "acme", "name": "Acme"}), (TenantUpdate, {}), (DomainSwitchIn, {})],
)
def test_every_mail_domain_constraint_documented_is_enforced(
    document: dict[str, Any], model: type[BaseModel], base: dict[str, Any]
) -> None:
    schema = body_field(document, model.__name__, "mailDomain")
    assert (schema["minLength"], schema["maxLength"]) == (1, 253)
    assert "fully qualified domain name" in schema["description"]  # what no pattern can say (IDNA)
    accepts = accepted_by_model(model, base, "mailDomain")
    documented = Draft202012Validator(schema)
    assert [d for d in DOMAINS_ACCEPTED if not (accepts(d) and documented.is_valid(d))] == []
    assert [d for d in DOMAINS_REFUSED if accepts(d)] == []
    # Whatever the document refuses, the validator refuses too.
    assert [d for d in DOMAINS_REFUSED + DOMAINS_ACCEPTED if not documented.is_valid(d) and accepts(d)] == []


@pytest.mark.parametrize("method", ["put", "delete"])
def test_the_admin_sub_pattern_and_lengths_are_what_the_path_enforces(document: dict[str, Any], method: str) -> None:
    schema = path_parameter(document, "/tenants/{slug}/admins/{sub}", method, "sub")
    assert {"pattern", "minLength", "maxLength"} <= set(schema)
    adapter = TypeAdapter(SubPath)

    def accepts(value: object) -> bool:
        try:
            adapter.validate_python(value)
        except ValidationError:
            return False
        return True

    assert disagreements(schema, accepts, SUBS) == []


def test_the_hidden_characters_are_every_control_format_private_surrogate_and_separator_and_the_noncharacters() -> None:
    hidden = {cp for a, b in HIDDEN_RANGES for cp in range(a, b + 1)}
    wanted = {"Cc", "Cf", "Co", "Cs", "Zl", "Zp"}
    noncharacters = set(range(0xFDD0, 0xFDF0)) | {p << 16 | low for p in range(17) for low in (0xFFFE, 0xFFFF)}
    categories = {cp: unicodedata.category(chr(cp)) for cp in range(sys.maxunicode + 1)}
    missing = [f"U+{cp:04X}" for cp, cat in categories.items() if cat in wanted and cp not in hidden]
    assert missing == [], "add these to HIDDEN_RANGES (this Python's Unicode tables are newer)"
    # Nothing else, except noncharacters and format characters of later Unicode versions (unassigned here).
    extra = [f"U+{cp:04X}" for cp in hidden if categories[cp] not in wanted and cp not in noncharacters]
    assert all(categories[int(cp[2:], 16)] == "Cn" for cp in extra), extra
    assert len(extra) <= 8, extra
