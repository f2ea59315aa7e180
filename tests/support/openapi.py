"""Validate httpx requests and responses against an upstream's OpenAPI document (read from ../shared)."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import yaml
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "upstream"


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


@functools.cache
def load_openapi(name: str, filename: str, server_path: str) -> OpenAPI:
    """Load and cache a spec; its servers are replaced by ``server_path`` so any loopback host matches."""
    path = shared_file(name, filename)
    with path.open("rb") as fh:
        data = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    data = _stringify_keys(data)
    data["servers"] = [{"url": server_path}]
    return OpenAPI.from_dict(data)


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
