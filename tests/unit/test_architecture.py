"""The import rules between the layers, checked on the source so that a change breaking one fails here."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "tenantry"
UPSTREAMS = ("authentik", "stalwart", "ocis")
# Modules of an upstream package that map the wire onto our ports (the adapter, and the dry run and the listing
# of marked objects it delegates to); everything else there speaks the wire only.
ADAPTER_SIDE = {"adapter", "plan", "inventory", "translation", "zone", "__init__"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> Iterator[str]:
    """Every module ``path`` imports, at the top or inside a function, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield target
            yield from (f"{target}.{alias.name}" for alias in node.names)


def project_imports(path: Path) -> set[str]:
    return {name for name in imports_of(path) if name == "tenantry" or name.startswith("tenantry.")}


def modules(under: str) -> list[Path]:
    return sorted((PACKAGE / under).rglob("*.py")) if (PACKAGE / under).is_dir() else [PACKAGE / f"{under}.py"]


def violations(paths: list[Path], forbidden: tuple[str, ...], *, allowed: tuple[str, ...] = ()) -> list[str]:
    found = []
    for path in paths:
        for name in sorted(project_imports(path)):
            if any(name == f or name.startswith(f + ".") for f in forbidden) and not any(
                name == a or name.startswith(a + ".") for a in allowed
            ):
                found.append(f"{module_name(path)} imports {name}")
    return found


def test_the_checker_sees_relative_lazy_and_from_imports() -> None:
    # The rules below are only as good as this: a rule that cannot see an import would pass vacuously.
    pkg = SRC / "tenantry" / "integrations" / "stalwart" / "client.py"
    names = set(imports_of(pkg))
    assert any(name.startswith("tenantry.integrations.stalwart") for name in names)
    sample = PACKAGE / "provisioning" / "reconciler.py"
    assert "tenantry.tenants.models" in project_imports(sample)


def test_adapters_and_clients_never_import_the_core() -> None:
    core = (
        "tenantry.provisioning",
        "tenantry.tenants",
        "tenantry.db",
        "tenantry.config",
        "tenantry.app",
        "tenantry.container",
        "tenantry.web",
        "tenantry.auth",
        "tenantry.portal",
        "tenantry.domains",
    )
    assert violations(modules("integrations"), core) == []


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_each_upstream_client_package_depends_on_nothing_else_in_the_project(upstream: str) -> None:
    package = f"tenantry.integrations.{upstream}"
    wire = [p for p in modules(f"integrations/{upstream}") if p.stem not in ADAPTER_SIDE]
    assert wire, f"no wire modules found for {upstream}"
    found = [
        f"{module_name(p)} imports {name}"
        for p in wire
        for name in sorted(project_imports(p))
        if not (name == package or name.startswith(package + ".")) or name.startswith(f"{package}.adapter")
    ]
    assert found == []


def test_tenants_does_not_import_provisioning() -> None:
    # provisioning reads the tenant models; the tenants feature reaches the reconciler through a port of its own.
    assert violations(modules("tenants"), ("tenantry.provisioning",)) == []


def test_orphans_reach_the_upstreams_only_through_their_port() -> None:
    # The orphans feature lists and deletes upstream objects through a Protocol the provisioning side implements.
    allowed = ("tenantry.integrations.ports", "tenantry.integrations.errors")
    assert violations(modules("orphans"), ("tenantry.provisioning", "tenantry.integrations"), allowed=allowed) == []


def test_the_portal_reaches_tenants_only_through_their_services_never_provisioning() -> None:
    # The portal acts as the signed-in person through the same use cases as the API; no privileged path.
    assert violations(modules("portal"), ("tenantry.provisioning", "tenantry.integrations")) == []
    assert violations(modules("portal"), ("tenantry.tenants.repository",)) == []


def test_db_knows_no_feature_except_through_the_alembic_model_import() -> None:
    features = (
        "tenantry.tenants",
        "tenantry.provisioning",
        "tenantry.integrations",
        "tenantry.auth",
        "tenantry.portal",
        "tenantry.domains",
        "tenantry.sandbox",
    )
    paths = [p for p in modules("db") if p != PACKAGE / "db" / "migrations" / "env.py"]
    assert violations(paths, features) == []


def test_the_shared_vocabulary_imports_nothing_of_the_project() -> None:
    assert project_imports(PACKAGE / "states.py") == set()


def test_auth_and_domains_do_not_import_the_features() -> None:
    features = ("tenantry.tenants", "tenantry.provisioning", "tenantry.portal")
    assert violations(modules("auth") + modules("domains"), features) == []


def test_the_sandbox_simulates_the_upstreams_without_the_product_clients() -> None:
    # A simulator written from the product's own client would agree with it by construction.
    product = ("tenantry.integrations", "tenantry.provisioning", "tenantry.tenants", "tenantry.domains")
    assert violations(modules("sandbox"), product) == []


def test_routes_reach_the_store_only_through_their_service() -> None:
    routes = list(PACKAGE.rglob("routes.py"))
    assert routes
    found = [
        f"{module_name(p)} imports {name}"
        for p in routes
        for name in imports_of(p)
        if name.endswith(".repository") or ".repository." in name or name.startswith("sqlalchemy")
    ]
    assert found == []


def test_no_handler_or_service_commits() -> None:
    found = []
    for path in PACKAGE.rglob("*.py"):
        if path.parent.name in {"sandbox", "migrations"} or path.name in {"web.py"}:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            is_commit = (
                isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "commit"
            )
            if is_commit and path.parent.name in {"tenants", "portal", "domains"}:
                found.append(f"{module_name(path)}:{node.lineno}")
    assert found == []


def test_no_module_is_much_over_400_lines() -> None:
    long = {module_name(p): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 430}
    assert long == {}
