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

from dataclasses import dataclass
from typing import Literal

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
