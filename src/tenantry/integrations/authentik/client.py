"""Async client for the part of authentik's admin REST API (``/api/v3``) that Tenantry uses: groups."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import pydantic

from .errors import (
    AuthentikAuthError,
    AuthentikConnectionError,
    AuthentikForbiddenError,
    AuthentikNotFoundError,
    AuthentikRateLimitError,
    AuthentikResponseError,
    AuthentikServerError,
    AuthentikTimeoutError,
    AuthentikValidationError,
)
from .models import Group, GroupMembers, GroupPage, Member

API_PREFIX = "/api/v3"
# authentik clamps page_size to its configured maximum (100 by default) without saying so; we ask for the
# maximum and follow ``next`` regardless of what we got.
PAGE_SIZE = 100
# A server that keeps pointing at an already-read page would otherwise loop forever.
MAX_PAGES = 10_000
_DETAIL_LIMIT = 300
_REDACTED = "[redacted]"
# DRF's PermissionDenied: the token was accepted, its user lacks the permission (a bad token says otherwise).
_NO_PERMISSION = "You do not have permission to perform this action."
# authentik renders an unhandled exception through its error page, a view that only knows GET: so a crash
# while handling a write answers 405 with an empty body and "Allow: GET, HEAD, OPTIONS", not 500.
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The methods each endpoint this client calls accepts; a 405 to one of them cannot mean "not allowed".
_ENDPOINTS: tuple[tuple[re.Pattern[str], frozenset[str]], ...] = (
    (re.compile(r"/core/groups/"), frozenset({"GET", "POST"})),
    (re.compile(r"/core/groups/[^/.]+/"), frozenset({"GET", "PUT", "PATCH", "DELETE"})),
    (re.compile(r"/core/users/[^/.]+/"), frozenset({"GET", "PUT", "PATCH", "DELETE"})),
)
_CRASHED = "authentik failed while handling the request (its error page answers a write with 405)"
_M = TypeVar("_M", bound=pydantic.BaseModel)
_BY_STATUS: dict[int, type[AuthentikResponseError]] = {
    401: AuthentikAuthError,
    403: AuthentikAuthError,  # authentik's answer to a bad or missing token
    404: AuthentikNotFoundError,
    429: AuthentikRateLimitError,
}


class AuthentikClient:
    """authentik's group API over an injected ``httpx.AsyncClient`` (which carries the timeout and TLS).

    ``base_url`` is the server root (``https://auth.example.com``); paths are under ``/api/v3``. The client
    does not retry: callers decide, with backoff kept in one place.
    """

    def __init__(self, http: httpx.AsyncClient, base_url: str, token: str) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._token = token

    @property
    def base_url(self) -> str:
        return self._base_url

    # -- groups -------------------------------------------------------------------------------------

    async def get_group(self, pk: str) -> Group:
        response = await self._request("GET", self._group_path(pk), params={"include_users": "false"})
        return self._parse(Group, response)

    async def find_groups(self, *, name: str | None = None, attributes: Mapping[str, Any] | None = None) -> list[Group]:
        """Every group matching the filters (all pages). ``name`` is exact and case-sensitive upstream."""
        return [group async for page in self.group_pages(name=name, attributes=attributes) for group in page]

    async def group_pages(
        self, *, name: str | None = None, attributes: Mapping[str, Any] | None = None
    ) -> AsyncIterator[list[Group]]:
        """The groups matching the filters, a page at a time (so a caller need not hold them all)."""
        params: dict[str, str] = {"include_users": "false", "page_size": str(PAGE_SIZE)}
        if name is not None:
            params["name"] = name
        if attributes is not None:
            params["attributes"] = json.dumps(dict(attributes), separators=(",", ":"), sort_keys=True)
        page = 1
        while True:
            response = await self._request("GET", "/core/groups/", params={**params, "page": str(page)})
            parsed = self._parse(GroupPage, response)
            yield parsed.results
            following = int(parsed.pagination.next)
            if following <= 0:
                return
            if following <= page:
                raise self._shape_error(response, f"pagination went from page {page} back to {following}")
            if following > MAX_PAGES:
                raise self._shape_error(response, f"more than {MAX_PAGES} pages of groups")
            page = following

    async def create_group(self, name: str, attributes: Mapping[str, Any], is_superuser: bool = False) -> Group:
        body = {"name": name, "is_superuser": is_superuser, "attributes": dict(attributes)}
        response = await self._request("POST", "/core/groups/", json_body=body)
        return self._parse(Group, response)

    async def update_group(
        self,
        pk: str,
        *,
        name: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        is_superuser: bool | None = None,
    ) -> Group:
        """PATCH the given fields. ``attributes`` replaces the stored dict wholesale: send the merged one."""
        body: dict[str, Any] = {}
        if name is not None:
            body["name"] = name
        if attributes is not None:
            body["attributes"] = dict(attributes)
        if is_superuser is not None:
            body["is_superuser"] = is_superuser
        response = await self._request("PATCH", self._group_path(pk), json_body=body)
        return self._parse(Group, response)

    async def delete_group(self, pk: str) -> None:
        await self._request("DELETE", self._group_path(pk))

    # -- members ------------------------------------------------------------------------------------

    async def group_members(self, pk: str) -> list[Member]:
        """The users in the group (``users_obj``, which authentik fills when ``include_users`` is on)."""
        response = await self._request("GET", self._group_path(pk), params={"include_users": "true"})
        return self._parse(GroupMembers, response).users_obj or []

    async def update_user(
        self, pk: int, *, is_active: bool | None = None, attributes: Mapping[str, Any] | None = None
    ) -> Member:
        """PATCH a user's fields. ``attributes`` replaces the stored dict wholesale: send the merged one."""
        body: dict[str, Any] = {}
        if is_active is not None:
            body["is_active"] = is_active
        if attributes is not None:
            body["attributes"] = dict(attributes)
        response = await self._request("PATCH", f"/core/users/{int(pk)}/", json_body=body)
        return self._parse(Member, response)

    async def ping(self) -> None:
        """The cheapest authenticated call: one group, no members."""
        await self._request("GET", "/core/groups/", params={"page_size": "1", "include_users": "false"})

    # -- plumbing -----------------------------------------------------------------------------------

    @staticmethod
    def _group_path(pk: str) -> str:
        # Stored ids come from our database; quoting keeps a malformed one from addressing another path.
        return f"/core/groups/{quote(pk, safe='')}/"

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        """The only place doing HTTP: sends one request and maps every failure onto the error tree."""
        url = f"{self._base_url}{API_PREFIX}{path}"
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        try:
            response = await self._http.request(method, url, params=params, json=json_body, headers=headers)
        except httpx.TimeoutException as err:
            raise AuthentikTimeoutError(
                f"authentik at {self._base_url} did not answer {method} {path} in time", url=self._base_url
            ) from err
        except httpx.TransportError as err:
            raise AuthentikConnectionError(
                f"cannot reach authentik at {self._base_url}: {self._redact(str(err)) or type(err).__name__}",
                url=self._base_url,
            ) from err
        if response.is_success:
            return response
        raise self._status_error(method, path, response)

    def _status_error(self, method: str, path: str, response: httpx.Response) -> AuthentikResponseError:
        status = response.status_code
        payload = self._json_or_none(response)
        detail = self._detail(payload, response)
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        message = f"authentik answered {status} to {method} {path}: {detail}"
        if status == 400:
            return AuthentikValidationError(
                message, status=status, detail=detail, field_errors=self._field_errors(payload), retry_after=retry_after
            )
        kind: type[AuthentikResponseError]
        if status == 403 and detail == _NO_PERMISSION:
            kind = AuthentikForbiddenError
        elif status >= 500:
            kind = AuthentikServerError
        elif status == 405 and self._crashed(method, path, payload):
            kind, detail = AuthentikServerError, _CRASHED
            message = f"authentik answered {status} to {method} {path}: {detail}"
        else:
            kind = _BY_STATUS.get(status, AuthentikResponseError)
        return kind(message, status=status, detail=detail, retry_after=retry_after)

    @staticmethod
    def _crashed(method: str, path: str, payload: Any) -> bool:
        """Whether a 405 is authentik's crash page: a write to an endpoint that accepts it, answered without
        DRF's JSON (DRF's own 405, for a method an endpoint lacks, says so in a ``detail``)."""
        accepted = any(pattern.fullmatch(path) and method in methods for pattern, methods in _ENDPOINTS)
        return method in _WRITES and accepted and not isinstance(payload, dict)

    @staticmethod
    def _json_or_none(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            return None

    def _detail(self, payload: Any, response: httpx.Response) -> str:
        if isinstance(payload, dict):
            detail = payload.get("detail")
            if isinstance(detail, str) and detail:
                return self._redact(detail)
            errors = self._field_errors(payload)
            if errors:
                return self._redact("; ".join(f"{key}: {' '.join(msgs)}" for key, msgs in errors.items()))
        if isinstance(payload, list) and payload and all(isinstance(item, str) for item in payload):
            # A ValidationError raised with a plain message (the attribute filter's) is a bare list.
            return self._redact(" ".join(payload))
        text = " ".join(response.text.split())[:_DETAIL_LIMIT]
        return self._redact(text) if text else response.reason_phrase or "no details"

    @staticmethod
    def _field_errors(payload: Any) -> dict[str, list[str]]:
        # DRF sends lists of messages per field, but some actions send a bare string (see the NOTES).
        if not isinstance(payload, dict):
            return {}
        errors: dict[str, list[str]] = {}
        for key, value in payload.items():
            if key in ("code", "detail"):
                continue
            if isinstance(value, list):
                errors[str(key)] = [item if isinstance(item, str) else json.dumps(item) for item in value]
            elif isinstance(value, str):
                errors[str(key)] = [value]
            else:
                errors[str(key)] = [json.dumps(value)]
        return errors

    def _redact(self, text: str) -> str:
        return text.replace(self._token, _REDACTED) if self._token else text

    def _parse(self, model: type[_M], response: httpx.Response) -> _M:
        try:
            return model.model_validate_json(response.content)
        except pydantic.ValidationError as err:
            raise self._shape_error(response, f"body is not a {model.__name__}") from err

    def _shape_error(self, response: httpx.Response, what: str) -> AuthentikResponseError:
        path = response.request.url.path
        detail = f"unexpected response from {response.request.method} {path}: {what}"
        return AuthentikResponseError(f"authentik {detail}", status=response.status_code, detail=detail)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent or bad.

    ``now`` is the current Unix time (the clock by default), for the date form. Repeated in each upstream
    package on purpose, so that the package depends on nothing else in the project.
    """
    text = (value or "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        # RFC 9110 dates are always GMT; a zone-less parse result means exactly that.
        when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds) if math.isfinite(seconds) else None
