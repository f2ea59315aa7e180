"""Errors raised by the Stalwart JMAP management client, one tree for the three JMAP error levels.

    StalwartError
    ├── StalwartConnectionError    the server could not be reached (DNS, refused, reset)
    ├── StalwartTimeoutError       no answer in time
    ├── StalwartProtocolError      an answer that is not JMAP (not JSON, missing keys, unknown call id)
    ├── StalwartRequestError       request level: HTTP status + application/problem+json
    │   ├── StalwartAuthError          401 / 403
    │   ├── StalwartRateLimitError     429 (``retry_after`` from ``Retry-After``)
    │   └── StalwartServerError        5xx
    ├── StalwartMethodError        method level: ``["error", {"type", "description"}, callId]``
    └── StalwartSetError           object level: a ``notCreated``/``notUpdated``/``notDestroyed`` entry

Messages are built from what the server said about the request; they never carry credentials.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, Literal

SetOperation = Literal["create", "update", "destroy"]


class StalwartError(Exception):
    """Base class of everything the Stalwart client raises."""


class StalwartConnectionError(StalwartError):
    """The connection failed before a complete answer arrived."""


class StalwartTimeoutError(StalwartError):
    """The server did not answer within the client's timeout."""


class StalwartProtocolError(StalwartError):
    """The server answered, but not with the JMAP shape the client expects."""


class StalwartRequestError(StalwartError):
    """The whole request was refused (HTTP status >= 400, usually with an RFC 7807 problem body)."""

    def __init__(
        self,
        *,
        status: int,
        type_: str = "about:blank",
        title: str = "",
        detail: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.type = type_
        self.title = title
        self.detail = detail
        self.retry_after = retry_after
        text = f"Stalwart answered HTTP {status}"
        if title:
            text += f" {title}"
        if detail:
            text += f": {detail}"
        if type_ and type_ != "about:blank":
            text += f" ({type_})"
        super().__init__(text)


class StalwartAuthError(StalwartRequestError):
    """401 (unknown or expired credentials) or 403 (credentials valid but not allowed)."""


class StalwartRateLimitError(StalwartRequestError):
    """429: too many requests; ``retry_after`` is the server's hint in seconds, if it gave one."""


class StalwartServerError(StalwartRequestError):
    """5xx: the server failed or is unavailable."""


class StalwartMethodError(StalwartError):
    """One method call of a request failed (``unknownMethod``, ``forbidden``, ``serverUnavailable`` ...)."""

    def __init__(self, *, method: str, call_id: str, type_: str, description: str = "") -> None:
        self.method = method
        self.call_id = call_id
        self.type = type_
        self.description = description
        text = f"Stalwart refused {method}: {type_}"
        if description:
            text += f" ({description})"
        super().__init__(text)


@dataclass(frozen=True)
class ObjectRef:
    """An ``{"object", "id"}`` pair a SetError points at (the existing or the linking object)."""

    object: str
    id: str


@dataclass(frozen=True)
class ValidationIssue:
    """One entry of a SetError's ``validationErrors`` (``Required``, ``Invalid``, ``MaxLength`` ...)."""

    type: str
    property: str


class StalwartSetError(StalwartError):
    """One object of an ``x:<Object>/set`` could not be created, updated or destroyed.

    ``type`` is the JMAP SetError type: ``primaryKeyViolation`` (``object_id`` is the existing object),
    ``objectIsLinked`` (``linked_objects``), ``validationFailed`` (``validation_errors``),
    ``invalidProperties``/``invalidPatch`` (``properties``), ``invalidForeignKey``, ``forbidden``,
    ``notFound``, ``overQuota`` ...
    """

    def __init__(
        self,
        *,
        object_type: str,
        operation: SetOperation,
        key: str,
        type_: str,
        description: str = "",
        properties: tuple[str, ...] = (),
        object_id: ObjectRef | None = None,
        existing_id: str | None = None,
        linked_objects: tuple[ObjectRef, ...] = (),
        validation_errors: tuple[ValidationIssue, ...] = (),
    ) -> None:
        self.object_type = object_type
        self.operation = operation
        self.key = key
        self.type = type_
        self.description = description
        self.properties = properties
        self.object_id = object_id
        self.existing_id = existing_id
        self.linked_objects = linked_objects
        self.validation_errors = validation_errors
        text = f"Stalwart could not {operation} {object_type} {key!r}: {type_}"
        if description:
            text += f" ({description})"
        if properties:
            text += f"; properties: {', '.join(properties)}"
        super().__init__(text)

    @property
    def is_primary_key_violation(self) -> bool:
        return self.type == "primaryKeyViolation"

    @property
    def is_not_found(self) -> bool:
        return self.type == "notFound"

    @property
    def is_object_linked(self) -> bool:
        return self.type == "objectIsLinked"

    @property
    def is_validation_error(self) -> bool:
        return self.type in {"validationFailed", "invalidProperties", "invalidPatch"}

    @property
    def is_forbidden(self) -> bool:
        return self.type == "forbidden"

    @property
    def is_over_quota(self) -> bool:
        return self.type == "overQuota"

    @property
    def invalid_properties(self) -> tuple[str, ...]:
        """Every property named as wrong, from ``properties`` and ``validationErrors`` alike."""
        named = list(self.properties)
        named.extend(issue.property for issue in self.validation_errors if issue.property not in named)
        return tuple(named)


# --- building errors from what the server sent -------------------------------------------------------


def _object_name(method: str) -> str:
    # "x:Domain/set" -> "Domain", the name Stalwart uses in SetError objectId/linkedObjects.
    return method.split("/", 1)[0].removeprefix("x:")


def _as_str_tuple(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(item) for item in value)
    return ()


def _object_ref(value: Any) -> ObjectRef | None:
    if isinstance(value, Mapping) and "object" in value and "id" in value:
        return ObjectRef(object=str(value["object"]), id=str(value["id"]))
    return None


def parse_set_error(method: str, operation: SetOperation, key: str, raw: Any) -> StalwartSetError:
    """A ``notCreated``/``notUpdated``/``notDestroyed`` entry as a :class:`StalwartSetError`."""
    body = raw if isinstance(raw, Mapping) else {}
    linked = body.get("linkedObjects")
    issues = body.get("validationErrors")
    existing = body.get("existingId")
    return StalwartSetError(
        object_type=_object_name(method),
        operation=operation,
        key=key,
        type_=str(body.get("type", "unknown")),
        description=str(body.get("description") or ""),
        properties=_as_str_tuple(body.get("properties")),
        object_id=_object_ref(body.get("objectId")),
        existing_id=str(existing) if existing is not None else None,
        linked_objects=tuple(r for r in map(_object_ref, linked if isinstance(linked, list) else []) if r),
        validation_errors=tuple(
            ValidationIssue(type=str(issue.get("type", "")), property=str(issue.get("property", "")))
            for issue in (issues if isinstance(issues, list) else [])
            if isinstance(issue, Mapping)
        ),
    )


_SET_FAILURES: tuple[tuple[SetOperation, str], ...] = (
    ("create", "notCreated"),
    ("update", "notUpdated"),
    ("destroy", "notDestroyed"),
)


def first_set_error(method: str, result: Mapping[str, Any]) -> StalwartSetError | None:
    """The first failure a ``/set`` response reports (Stalwart answers HTTP 200 even when all failed)."""
    for operation, key_name in _SET_FAILURES:
        failures = result.get(key_name)
        if isinstance(failures, Mapping) and failures:
            key, raw = next(iter(failures.items()))
            return parse_set_error(method, operation, str(key), raw)
    return None


def request_error(
    status: int, body: Any, *, reason_phrase: str = "", retry_after: str | None = None
) -> StalwartRequestError:
    """The error for an HTTP status >= 400 and its (problem+json, if any) body."""
    problem: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    kwargs: dict[str, Any] = {
        "status": status,
        "type_": str(problem.get("type") or "about:blank"),
        "title": str(problem.get("title") or reason_phrase or ""),
        "detail": str(problem.get("detail") or ""),
        "retry_after": parse_retry_after(retry_after),
    }
    if status in (401, 403):
        return StalwartAuthError(**kwargs)
    if status == 429:
        return StalwartRateLimitError(**kwargs)
    if status >= 500:
        return StalwartServerError(**kwargs)
    return StalwartRequestError(**kwargs)


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
