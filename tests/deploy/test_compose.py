"""The compose stack: the Compose Specification, `docker compose config` with .env.example, and its wiring."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from tests.deploy.support import (
    COMPOSE_DIR,
    COMPOSE_FILE,
    ENV_EXAMPLE,
    TENANTRY_SERVICES,
    compose_raw,
    compose_resolved,
    compose_schema,
    interpolate,
    is_mounted,
    mount_targets,
    read_env_file,
    run_tool,
    service_environment,
    tool,
    variables_used,
)

EXPECTED_SERVICES = {
    "traefik",
    "authentik-db",
    "authentik-server",
    "authentik-worker",
    "stalwart",
    "ocis",
    "tenantry-db",
    *TENANTRY_SERVICES,
}


def docker_compose_config(*extra: str, env_file: Path = ENV_EXAMPLE) -> tuple[int, str, str]:
    result = run_tool(
        tool("docker-compose"), "-f", str(COMPOSE_FILE), "--env-file", str(env_file), "config", *extra, cwd=COMPOSE_DIR
    )
    return result.returncode, result.stdout, result.stderr


@pytest.mark.slow
def test_the_file_and_its_interpolation_follow_the_compose_specification() -> None:
    validator = jsonschema.Draft202012Validator(compose_schema())
    raw_errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose_raw())]
    assert not raw_errors, raw_errors
    code, out, err = docker_compose_config("--format", "json")
    assert code == 0, err
    resolved_errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(json.loads(out))]
    assert not resolved_errors, resolved_errors


@pytest.mark.slow
def test_the_schema_check_is_not_vacuous() -> None:
    validator = jsonschema.Draft202012Validator(compose_schema())
    broken = {"services": {"api": {"image": "x", "restart": ["always"], "bogus": True}}}
    messages = " ".join(e.message for e in validator.iter_errors(broken))
    assert "is not of type 'string'" in messages
    assert "'bogus' was unexpected" in messages


@pytest.mark.slow
def test_docker_compose_config_succeeds_with_env_example_and_sets_every_variable() -> None:
    code, _out, err = docker_compose_config("--quiet")
    assert code == 0, err
    assert "not set" not in err, err  # compose warns about every variable it had to default to ""


@pytest.mark.slow
def test_docker_compose_config_refuses_a_missing_secret(tmp_path: Path) -> None:
    env = read_env_file(ENV_EXAMPLE)
    env.pop("TENANTRY_DB_PASSWORD")
    partial = tmp_path / "partial.env"
    partial.write_text("".join(f"{k}={v}\n" for k, v in env.items()), encoding="utf-8")
    code, _, err = docker_compose_config("--quiet", env_file=partial)
    assert code != 0
    assert "TENANTRY_DB_PASSWORD" in err


@pytest.mark.slow
def test_the_python_interpolation_the_fast_checks_use_agrees_with_docker_compose() -> None:
    code, out, err = docker_compose_config("--format", "json", "--no-normalize")
    assert code == 0, err
    theirs = json.loads(out)["services"]
    ours = compose_resolved()["services"]
    for name, service in ours.items():
        assert service_environment(theirs[name]) == service_environment(service), name
        assert (theirs[name].get("labels") or {}) == (service.get("labels") or {}), name


def test_interpolation_forms() -> None:
    env = {"A": "a", "E": ""}
    assert interpolate("${A}/${B:-b}/${E:-e}/${E-e}/$${A}", env) == "a/b/e//${A}"
    with pytest.raises(KeyError, match="needed"):
        interpolate("${B:?needed}", env)


def test_every_service_the_issue_names_is_there() -> None:
    assert set(compose_raw()["services"]) == EXPECTED_SERVICES


def test_env_example_defines_exactly_the_variables_the_file_uses() -> None:
    used = variables_used(COMPOSE_FILE.read_text(encoding="utf-8"))
    defined = set(read_env_file(ENV_EXAMPLE))
    assert used - defined == set(), "used in compose.yaml, missing from .env.example"
    assert defined - used == set(), "in .env.example but unused"


def test_images_are_pinned() -> None:
    for name, service in compose_resolved()["services"].items():
        image = service["image"]
        if name in TENANTRY_SERVICES:
            assert "build" in service, f"{name} builds the image from the repository"
            continue
        assert ":" in image.rsplit("/", 1)[-1], f"{name}: {image} has no tag"
        assert not image.endswith(":latest"), f"{name}: {image}"


def test_no_redis_and_authentik_is_new_enough() -> None:
    services = compose_resolved()["services"]
    assert not any("redis" in s["image"] for s in services.values())
    assert not any("REDIS" in k for s in services.values() for k in service_environment(s))
    tag = services["authentik-server"]["image"].rsplit(":", 1)[1]
    assert tuple(int(p) for p in tag.split(".")[:2]) >= (2025, 10)
    assert services["authentik-worker"]["image"] == services["authentik-server"]["image"]


def test_stalwart_016_on_rocksdb_and_the_mail_ports() -> None:
    stalwart = compose_resolved()["services"]["stalwart"]
    assert stalwart["image"].endswith(":v0.16")
    assert "/var/lib/stalwart" in mount_targets(stalwart)  # RocksDB's default path (x:Bootstrap dataStore)
    init = (COMPOSE_DIR / "init" / "tenantry_init.py").read_text(encoding="utf-8")
    assert '"@type": "RocksDb", "path": "/var/lib/stalwart/"' in init
    assert {str(p).split(":")[0] for p in stalwart["ports"]} == {"25", "465", "587", "993"}


def traefik_hosts() -> dict[str, str]:
    """Each Host(`...`) rule of a Traefik router, to the service that carries the label."""
    hosts = {}
    for name, service in compose_resolved()["services"].items():
        for key, value in (service.get("labels") or {}).items():
            if key.endswith(".rule"):
                for host in re.findall(r"Host\(`([^`]+)`\)", value):
                    hosts[host] = name
    return hosts


def test_every_public_name_is_a_network_alias_of_traefik() -> None:
    services = compose_resolved()["services"]
    aliases = set(services["traefik"]["networks"]["edge"]["aliases"])
    assert aliases == set(traefik_hosts())
    base = read_env_file(ENV_EXAMPLE)["BASE_DOMAIN"]
    assert aliases == {f"{sub}.{base}" for sub in ("auth", "cloud", "mail", "tenantry")}


def test_https_urls_point_at_names_traefik_serves() -> None:
    hosts = traefik_hosts()
    for name, service in compose_resolved()["services"].items():
        for key, value in service_environment(service).items():
            for url in re.findall(r"https://[^\s\"',]+", value):
                assert urlsplit(url).hostname in hosts, f"{name}: {key} calls {url}, which Traefik does not serve"


# A service's own public URL (which it announces, not calls) does not make it a TLS client.
OWN_URL_KEYS = {"STALWART_PUBLIC_URL", "OCIS_URL"}


def uses_tls(service: dict[str, object]) -> bool:
    env = service_environment(service)  # type: ignore[arg-type]
    return any("https://" in v for k, v in env.items() if k not in OWN_URL_KEYS)


def test_the_ca_is_mounted_wherever_tls_is_used() -> None:
    services = compose_resolved()["services"]
    # authentik calls out too (the issue asks for SSL_CERT_FILE on its server and worker).
    calling = {name for name, s in services.items() if uses_tls(s)} | {"authentik-server", "authentik-worker"}
    assert calling >= {"ocis", "tenantry-init", "tenantry-api", "tenantry-worker"}
    for name in sorted(calling):
        service = services[name]
        env = service_environment(service)
        targets = mount_targets(service)
        trusted = [env[k] for k in ("TENANTRY_CA_BUNDLE", "SSL_CERT_FILE") if k in env]
        trusted += [t for t in targets if t.startswith("/etc/ssl/certs/")]  # Go reads every file there
        assert trusted, f"{name} calls HTTPS but trusts no private CA"
        for path in trusted:
            assert is_mounted(path, targets), f"{name}: {path} is not mounted"
    for name in ("authentik-server", "authentik-worker"):
        assert service_environment(services[name])["SSL_CERT_FILE"].endswith("ca-bundle.pem"), name
    for name in TENANTRY_SERVICES:
        if name in calling:
            assert "TENANTRY_CA_BUNDLE" in service_environment(services[name]), name


def test_traefik_serves_the_mkcert_certificate_it_mounts() -> None:
    traefik = compose_resolved()["services"]["traefik"]
    tls = yaml.safe_load((COMPOSE_DIR / "traefik" / "tls.yaml").read_text(encoding="utf-8"))
    default = tls["tls"]["stores"]["default"]["defaultCertificate"]
    for path in (default["certFile"], default["keyFile"]):
        assert is_mounted(path, mount_targets(traefik)), path
    assert "--providers.file.filename=/etc/traefik/tls.yaml" in traefik["command"]
    script = (COMPOSE_DIR / "scripts" / "make-certs.sh").read_text(encoding="utf-8")
    for produced in ("certs/tls.pem", "certs/tls-key.pem", "certs/rootCA.pem", "certs/ca-bundle.pem"):
        assert produced in script, produced


def test_blueprints_are_mounted_on_the_authentik_worker() -> None:
    worker = compose_resolved()["services"]["authentik-worker"]
    volumes = {v["target"]: v for v in worker["volumes"] if isinstance(v, dict)}
    mount = next(v for t, v in volumes.items() if t.startswith("/blueprints/"))
    assert mount["source"] == "./authentik/blueprints"
    assert mount.get("read_only") is True


def test_the_one_shot_jobs_run_before_the_api_and_worker() -> None:
    services = compose_resolved()["services"]
    assert services["tenantry-migrate"]["command"] == ["db", "upgrade"]
    for name in ("tenantry-api", "tenantry-worker"):
        depends = services[name]["depends_on"]
        assert depends["tenantry-migrate"]["condition"] == "service_completed_successfully"
        assert depends["tenantry-init"]["condition"] == "service_completed_successfully"
    assert services["tenantry-api"]["command"][0] == "serve"
    assert services["tenantry-worker"]["command"] == ["worker"]
    for name in ("tenantry-migrate", "tenantry-init", "tenantry-worker"):
        assert services[name]["healthcheck"] == {"disable": True}, f"{name} serves no /healthz"
