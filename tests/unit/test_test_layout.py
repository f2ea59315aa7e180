"""What tests share lives in tests/support/: no test module imports another test module."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
# `from tests.a.test_b import x`, `import tests.a.test_b` and `from tests.a import (x, test_b)`.
TEST_MODULE_IMPORT = re.compile(
    r"^\s*(?:from\s+(tests\.[\w.]*\btest_\w+)\s+import"
    r"|import\s+(tests\.[\w.]*\btest_\w+)"
    r"|from\s+(tests(?:\.\w+)*)\s+import\s+(?:\([^)]*?|[^\n(]*?)\b(test_\w+))",
    re.MULTILINE,
)


def test_test_module_imports_are_recognised() -> None:
    source = (
        "from tests.unit.x.test_a import B\nimport tests.e2e.test_b\nfrom tests.unit import (\n    c,\n    test_d,\n)\n"
        "from tests.unit.y import test_e\n"
    )
    found = [m.group(0).split()[1] for m in TEST_MODULE_IMPORT.finditer(source)]
    assert found == ["tests.unit.x.test_a", "tests.e2e.test_b", "tests.unit", "tests.unit.y"]
    assert not TEST_MODULE_IMPORT.search("from tests.support.stack import x\nimport tests.support\n\n\ndef test_f():\n")


def test_no_test_module_imports_another_test_module() -> None:
    offenders = [
        f"{path.relative_to(TESTS.parent)}: {match.group(0).strip()}"
        for path in sorted(TESTS.rglob("*.py"))
        for match in TEST_MODULE_IMPORT.finditer(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], "move what is shared into tests/support/:\n" + "\n".join(offenders)
