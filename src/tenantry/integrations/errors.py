"""Step errors, their shared reasons, and the one way adapters translate their client's errors into them.

StepError
├── TransientStepError   retried automatically with backoff (connection, timeout, 429, 5xx)
└── PermanentStepError   stops retrying; the message says what a human must fix (400, 401/403, conflicts)

Each adapter has one pure ``translate_error(err) -> StepError`` over its client's error tree and applies it
with :func:`translated`; the same situation gets the same :class:`Reason` whichever upstream it comes from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TypeVar


class StepError(Exception):
    """A step could not reach its desired state. ``reason`` is a CamelCase condition reason."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.message = message
        # A plain str, so that a Reason member is stored and compared like any other reason.
        self.reason = str(reason)


class TransientStepError(StepError):
    """Worth retrying later; ``retry_after`` (seconds) is the upstream's own hint, if it gave one."""

    def __init__(self, message: str, *, reason: str = "UpstreamUnavailable", retry_after: float | None = None) -> None:
        super().__init__(message, reason=reason)
        self.retry_after = retry_after


class PermanentStepError(StepError):
    """Retrying will not help until someone changes the configuration or the upstream."""


class Reason(StrEnum):
    """Reasons every adapter gives for the same situation; an upstream's own ones (DomainConflict) come on top."""

    # Permanent: a human must act.
    AUTHENTICATION_FAILED = "AuthenticationFailed"  # the credentials were refused (401; authentik's 403)
    FORBIDDEN = "Forbidden"  # the credentials are valid but lack a permission
    VALIDATION_FAILED = "ValidationFailed"  # the upstream refused the values sent (400)
    NOT_FOUND = "NotFound"  # a 404 where an object or endpoint must exist
    NAME_CONFLICT = "NameConflict"  # the name is taken by an object that is not ours
    UNSUPPORTED_UPSTREAM = "UnsupportedUpstream"  # the upstream lacks a feature or version Tenantry needs
    UNEXPECTED_RESPONSE = "UnexpectedResponse"  # another status, or an answer the client cannot read
    NOT_MARKED = "NotMarked"  # the object no longer carries the marker it was found by: never deleted
    NOT_EMPTY = "NotEmpty"  # a duplicate to remove holds data: left for a human
    # Transient: retried with backoff.
    RATE_LIMITED = "RateLimited"  # 429, with the upstream's retry_after
    UPSTREAM_ERROR = "UpstreamError"  # 5xx
    UPSTREAM_TIMEOUT = "UpstreamTimeout"  # no answer in time
    UPSTREAM_UNREACHABLE = "UpstreamUnreachable"  # the connection failed
    UPSTREAM_CHANGED = "UpstreamChanged"  # an object changed or vanished between two calls of one step
    CREATE_UNSETTLED = "CreateUnsettled"  # an earlier create may still complete upstream: wait, don't create again


_E = TypeVar("_E", bound=Exception)


@contextmanager
def translated(errors: type[_E] | tuple[type[_E], ...], translate: Callable[[_E], StepError]) -> Iterator[None]:
    """Within the block, a client error of type ``errors`` leaves as ``translate(err)``, chained to it."""
    try:
        yield
    except errors as err:
        raise translate(err) from err
