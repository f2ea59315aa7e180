"""An async client for the oCIS LibreGraph API: project spaces (drives) and their members, nothing else."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from .errors import (
    OcisAuthError,
    OcisConnectionError,
    OcisResponseError,
    OcisTimeoutError,
    error_class_for,
)
from .models import Drive, Permission, User
from .stream import CollectionReader

_ModelT = TypeVar("_ModelT", bound=BaseModel)

_V1 = "/graph/v1.0"
_BETA = "/graph/v1beta1"


def _drive_body(*, name: str | None, description: str | None, quota_total: int | None) -> dict[str, Any]:
    """The drive fields a create or update sets, each only when given."""
    body: dict[str, Any] = {}
    if name is not None:
        body["name"] = name
    if description is not None:
        body["description"] = description
    if quota_total is not None:
        body["quota"] = {"total": quota_total}
    return body


def _segment(value: str) -> str:
    # Drive ids look like "<storage>$<space>" and permission ids like "u:<id>": escape everything.
    return quote(value, safe="")


class OcisClient:
    """LibreGraph over an injected ``httpx.AsyncClient``.

    ``base_url`` is the oCIS origin (``https://cloud.example.org``, without ``/graph``); ``auth`` is either
    ``httpx.BasicAuth(username, app_token)`` or a
    :class:`~tenantry.integrations.oauth.ClientCredentialsAuth`. ``timeout`` (seconds) overrides the
    HTTP client's own timeout, which ``build_http_client`` always sets. The client never retries.
    """

    def __init__(
        self, http: httpx.AsyncClient, base_url: str, auth: httpx.Auth, *, timeout: float | None = None
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._auth = auth
        self._timeout = http.timeout if timeout is None else httpx.Timeout(timeout)

    # -- drives ---------------------------------------------------------------------------------------

    async def create_drive(
        self,
        name: str,
        *,
        description: str | None = None,
        quota_total: int | None = None,
        drive_alias: str | None = None,
    ) -> Drive:
        """Create a project space (``POST /v1.0/drives``); a name is not unique, so every call creates one."""
        # driveType is left out on purpose: oCIS treats a missing type as "project", and the spec marks
        # the property read-only.
        body = _drive_body(name=name, description=description, quota_total=quota_total)
        if drive_alias is not None:
            body["driveAlias"] = drive_alias
        response = await self._request("POST", f"{_V1}/drives", json=body)
        return _parse(Drive, response)

    async def me(self) -> User:
        """The user these credentials act as (``GET /v1.0/me``): a cheap authenticated call."""
        return _parse(User, await self._request("GET", f"{_V1}/me"))

    async def list_project_drives(self, *, description_contains: str | Sequence[str] | None = None) -> list[Drive]:
        """Every project space the caller can list (disabled ones included); with ``description_contains``,
        only those whose description holds that text (or one of those texts)."""
        return [drive async for drive in self.project_drives(description_contains=description_contains)]

    async def project_drives(self, *, description_contains: str | Sequence[str] | None = None) -> AsyncIterator[Drive]:
        """The project spaces as :meth:`list_project_drives` finds them, one at a time as the answer arrives:
        the description is matched on the entry as read, so a listing of thousands of spaces builds a model
        only for those that match, and nobody holds the whole listing."""
        wanted = [description_contains] if isinstance(description_contains, str) else description_contains
        async for item in self._stream_collection(f"{_V1}/drives", params={"$filter": "driveType eq 'project'"}):
            # An entry that is not an object is kept, so that parsing it reports the malformed answer.
            if wanted is None or not isinstance(item, dict) or _holds(item, wanted):
                yield _parse_listed(Drive, item)

    async def get_drive(self, drive_id: str) -> Drive:
        """One space by id; :class:`~.errors.OcisNotFoundError` when gone (or hidden)."""
        response = await self._request("GET", f"{_V1}/drives/{_segment(drive_id)}")
        return _parse(Drive, response)

    async def update_drive(
        self, drive_id: str, *, name: str | None = None, description: str | None = None, quota_total: int | None = None
    ) -> Drive:
        """Change name, description and/or quota; fields left as None are not sent."""
        body = _drive_body(name=name, description=description, quota_total=quota_total)
        response = await self._request("PATCH", f"{_V1}/drives/{_segment(drive_id)}", json=body)
        return _parse(Drive, response)

    async def disable_drive(self, drive_id: str) -> None:
        """Disable a space (data kept, still listed as disabled)."""
        await self._request("DELETE", f"{_V1}/drives/{_segment(drive_id)}")

    async def purge_drive(self, drive_id: str) -> None:
        """Delete a disabled space for good (oCIS refuses with 400 while it is enabled)."""
        await self._request("DELETE", f"{_V1}/drives/{_segment(drive_id)}", headers={"Purge": "T"})

    async def restore_drive(self, drive_id: str) -> Drive:
        """Enable a disabled space again (``PATCH`` with ``Restore: T`` and an empty JSON object)."""
        response = await self._request("PATCH", f"{_V1}/drives/{_segment(drive_id)}", json={}, headers={"Restore": "T"})
        return _parse(Drive, response)

    # -- space members (v1beta1) ----------------------------------------------------------------------

    async def invite(
        self, drive_id: str, object_id: str, role_id: str, recipient_type: Literal["user", "group"] = "user"
    ) -> Permission:
        """Grant ``role_id`` on the space root to one user or group (by oCIS id)."""
        body = {
            "recipients": [{"@libre.graph.recipient.type": recipient_type, "objectId": object_id}],
            "roles": [role_id],
        }
        response = await self._request("POST", f"{_BETA}/drives/{_segment(drive_id)}/root/invite", json=body)
        permissions = [_parse_value(Permission, item, response) for item in _collection(response)]
        if not permissions:
            raise OcisResponseError(
                "oCIS accepted the invitation but returned no permission", status=response.status_code
            )
        return permissions[0]

    async def list_permissions(self, drive_id: str) -> list[Permission]:
        """The permissions (members and links) on the space root."""
        response = await self._request("GET", f"{_BETA}/drives/{_segment(drive_id)}/root/permissions")
        return [_parse_value(Permission, item, response) for item in _collection(response)]

    async def update_permission(self, drive_id: str, permission_id: str, *, role_id: str) -> Permission:
        """Change the role of a member (permission ids on space roots are ``u:<id>`` / ``g:<id>``)."""
        response = await self._request(
            "PATCH",
            f"{_BETA}/drives/{_segment(drive_id)}/root/permissions/{_segment(permission_id)}",
            json={"roles": [role_id]},
        )
        return _parse(Permission, response)

    async def delete_permission(self, drive_id: str, permission_id: str) -> None:
        """Remove a member from the space."""
        await self._request("DELETE", f"{_BETA}/drives/{_segment(drive_id)}/root/permissions/{_segment(permission_id)}")

    # -- the places doing HTTP ------------------------------------------------------------------------

    async def _stream_collection(self, path: str, *, params: dict[str, str]) -> AsyncIterator[Any]:
        """The entries of a collection answer (``{"value": [...]}``), parsed as they arrive: a listing of many
        thousand spaces is never held whole, as bytes or as objects. An empty list may come as a JSON null or
        a null ``value``; a ``value`` of another kind, or a body that is not JSON, is an error."""
        url = f"{self._base_url}{path}"
        headers = {"Accept": "application/json"}
        try:
            async with self._http.stream(
                "GET", url, params=params, headers=headers, auth=self._auth, timeout=self._timeout
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise _response_error(response)
                reader = CollectionReader(response.status_code)
                async for chunk in response.aiter_bytes():
                    for item in reader.feed(chunk):
                        yield item
                for item in reader.close():
                    yield item
        except httpx.TimeoutException as err:
            raise OcisTimeoutError(f"oCIS did not answer GET {path} in time") from err
        except httpx.TransportError as err:
            raise OcisConnectionError(f"oCIS is unreachable for GET {path} ({type(err).__name__})") from err

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        url = f"{self._base_url}{path}"
        all_headers = {"Accept": "application/json", **(headers or {})}
        try:
            response = await self._http.request(
                method, url, json=json, params=params, headers=all_headers, auth=self._auth, timeout=self._timeout
            )
        except httpx.TimeoutException as err:
            raise OcisTimeoutError(f"oCIS did not answer {method} {path} in time") from err
        except httpx.TransportError as err:
            raise OcisConnectionError(f"oCIS is unreachable for {method} {path} ({type(err).__name__})") from err
        if response.status_code >= 400:
            raise _response_error(response)
        return response


def _response_error(response: httpx.Response) -> OcisResponseError:
    status = response.status_code
    code, message, request_id = _odata_error(response)
    request_id = request_id or response.headers.get("X-Request-Id")
    retry_after = parse_retry_after(response.headers.get("Retry-After"), now=time.time())
    cls = error_class_for(status)
    if cls is OcisAuthError:
        text = "oCIS rejected the credentials (401)"
        text += f": {message}" if message else ""
    else:
        text = f"oCIS answered {status}"
        text += f" {code}" if code else ""
        text += f": {message}" if message else ""
    return cls(text, status=status, code=code, request_id=request_id, retry_after=retry_after)


def _odata_error(response: httpx.Response) -> tuple[str | None, str | None, str | None]:
    """``(code, message, request-id)`` of an OData error body; Nones for an empty or foreign body."""
    try:
        body = response.json()
    except ValueError:
        return None, None, None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, None, None
    code = error.get("code")
    message = error.get("message")
    inner = error.get("innererror")
    request_id = inner.get("request-id") if isinstance(inner, dict) else None
    return (
        code if isinstance(code, str) else None,
        message if isinstance(message, str) else None,
        request_id if isinstance(request_id, str) else None,
    )


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as err:
        raise OcisResponseError(
            f"oCIS answered {response.status_code} with a body that is not JSON", status=response.status_code
        ) from err


def _holds(item: dict[str, Any], texts: Sequence[str]) -> bool:
    description = item.get("description")
    return isinstance(description, str) and any(text in description for text in texts)


def _collection(response: httpx.Response) -> list[Any]:
    # An empty drive list can come back as a JSON null (or a null "value") rather than [].
    body = _body(response)
    if body is None:
        return []
    if not isinstance(body, dict):
        raise OcisResponseError(
            "oCIS answered a collection request with something other than an object", status=response.status_code
        )
    value = body.get("value")
    if value is None:
        return []
    if not isinstance(value, list):
        raise OcisResponseError(
            "oCIS answered with a collection whose value is not a list", status=response.status_code
        )
    return value


def _parse(model: type[_ModelT], response: httpx.Response) -> _ModelT:
    return _parse_value(model, _body(response), response)


def _parse_listed(model: type[_ModelT], value: Any) -> _ModelT:
    """An entry of a listing read as a stream (answered 200)."""
    try:
        return model.model_validate(value)
    except ValidationError as err:
        raise OcisResponseError(
            f"oCIS answered with a {model.__name__} the client cannot read ({err.error_count()} problems)", status=200
        ) from err


def _parse_value(model: type[_ModelT], value: Any, response: httpx.Response) -> _ModelT:
    try:
        return model.model_validate(value)
    except ValidationError as err:
        raise OcisResponseError(
            f"oCIS answered with a {model.__name__} the client cannot read ({err.error_count()} problems)",
            status=response.status_code,
        ) from err


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
