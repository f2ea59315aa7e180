"""Validate httpx requests and responses against an upstream's OpenAPI document (read from ../shared)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "upstream"
SPEC_CACHE = Path(__file__).resolve().parents[2] / ".pytest_cache" / "upstream-specs"


def running_in_ci() -> bool:
    """Whether the CI environment variable says so (CI=true, as CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def shared_file(*parts: str) -> Path:
    """Path of a file under ../shared/upstream.

    When it is missing, the test is skipped in a local clone without ../shared, but fails under CI: there
    the contract tests must run, and a silent skip would hide that they did not.
    """
    path = SHARED.joinpath(*parts)
    if not path.exists():
        reason = f"upstream spec {path} is not available (expected beside the checkout in ../shared)"
        if running_in_ci():
            pytest.fail(f"{reason}; under CI (CI=true) the contract tests must run, not be skipped", pytrace=False)
        pytest.skip(reason)
    return path


def _stringify_keys(node: Any) -> Any:
    # A few response-code keys are bare integers in the LibreGraph document; OpenAPI wants strings.
    if isinstance(node, dict):
        return {str(k): _stringify_keys(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_stringify_keys(v) for v in node]
    return node


def _load_document(path: Path) -> Any:
    """The YAML document at ``path``, keys stringified, parsed once per version of the file.

    Parsing the 1.8 MB authentik schema takes seconds; reading back the JSON copy kept in .pytest_cache
    takes milliseconds.
    """
    raw = path.read_bytes()
    cached = SPEC_CACHE / f"{path.parent.name}-{path.stem}-{hashlib.sha256(raw).hexdigest()[:16]}.json"
    with contextlib.suppress(OSError, ValueError):
        return json.loads(cached.read_bytes())
    loaded = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    # Through JSON on the first read too, so that it and the cached copy agree (a few example dates become strings).
    text = json.dumps(_stringify_keys(loaded), default=str)
    with contextlib.suppress(OSError):
        SPEC_CACHE.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
        partial.write_text(text, encoding="utf-8")
        partial.replace(cached)
    return json.loads(text)


@functools.cache
def load_openapi(name: str, filename: str, server_path: str) -> OpenAPI:
    """Load and cache a spec; its servers are replaced by ``server_path`` so any loopback host matches."""
    data = _load_document(shared_file(name, filename))
    data["servers"] = [{"url": server_path}]
    return openapi_from_dict(data)


def openapi_from_dict(data: dict[str, Any]) -> OpenAPI:
    """An upstream's document, taken as it is.

    Checking the document against the OpenAPI meta-schema is its authors' business and takes seconds for
    authentik's; what the tests check is our traffic against it.
    """
    return OpenAPI.from_dict(data, config=Config(spec_validator_cls=None))


class HttpxOpenAPIRequest:
    """openapi-core's Request protocol over an ``httpx.Request``."""

    def __init__(self, request: httpx.Request) -> None:
        self.request = request
        url = urlsplit(str(request.url))
        self.host_url = f"{url.scheme}://{url.netloc}"
        self.path = url.path
        self.method = request.method.lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qs(url.query, keep_blank_values=True)),
            header=Headers(dict(request.headers)),
            cookie=ImmutableMultiDict(),
        )
        body = request.content
        self.body: bytes | None = body if body else None
        self.content_type = request.headers.get("content-type", "application/json").split(";")[0]


class HttpxOpenAPIResponse:
    """openapi-core's Response protocol over an ``httpx.Response``."""

    def __init__(self, response: httpx.Response) -> None:
        self.data = response.content
        self.status_code = response.status_code
        self.content_type = response.headers.get("content-type", "application/json").split(";")[0]
        self.headers = Headers(dict(response.headers))


def validate_request(spec: OpenAPI, request: httpx.Request) -> None:
    """Raise if ``request`` does not match an operation of ``spec`` (path, parameters, body)."""
    spec.validate_request(HttpxOpenAPIRequest(request))


def validate_response(spec: OpenAPI, request: httpx.Request, response: httpx.Response) -> None:
    """Raise if ``response`` is not what ``spec`` declares for ``request``'s operation and status."""
    spec.validate_response(HttpxOpenAPIRequest(request), HttpxOpenAPIResponse(response))


def authentik_spec() -> OpenAPI:
    return load_openapi("authentik", "schema.yml", "/api/v3")


def ocis_spec() -> OpenAPI:
    return load_openapi("ocis", "libre-graph-api.yaml", "/graph")
