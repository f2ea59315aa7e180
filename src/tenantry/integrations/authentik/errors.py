"""Errors raised by :class:`~tenantry.integrations.authentik.client.AuthentikClient`.

    AuthentikError
    ├── AuthentikConnectionError      the server could not be reached (DNS, refused, reset, TLS)
    ├── AuthentikTimeoutError         no answer within the HTTP client's timeout
    └── AuthentikResponseError        an unexpected status or body (status, detail, retry_after)
        ├── AuthentikAuthError        403 (authentik's answer to a bad or missing token), 401 alike
        │   └── AuthentikForbiddenError   403 to a valid token whose user lacks the permission
        ├── AuthentikNotFoundError    404
        ├── AuthentikValidationError  400, with the per-field errors
        ├── AuthentikRateLimitError   429
        └── AuthentikServerError      the server failed: a 5xx, or the 405 authentik's crash page answers to a
                                      write on an endpoint that accepts that method (see the client)

Messages never contain the API token.
"""

from __future__ import annotations


class AuthentikError(Exception):
    """Base class of every error the authentik client raises."""


class AuthentikConnectionError(AuthentikError):
    """The server at ``url`` could not be reached."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class AuthentikTimeoutError(AuthentikError):
    """The server at ``url`` did not answer in time."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class AuthentikResponseError(AuthentikError):
    """authentik answered, but not with what was asked for.

    ``detail`` is the server's own explanation (its ``detail`` field, or a short excerpt of the body);
    ``retry_after`` is the ``Retry-After`` hint in seconds, when the server sent one.
    """

    def __init__(self, message: str, *, status: int, detail: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail
        self.retry_after = retry_after


class AuthentikAuthError(AuthentikResponseError):
    """The API token is missing, invalid, expired or lacks a permission."""


class AuthentikForbiddenError(AuthentikAuthError):
    """The API token is valid, but its user lacks the permission for this call."""


class AuthentikNotFoundError(AuthentikResponseError):
    """The addressed object does not exist (or is not visible to the token's user)."""


class AuthentikValidationError(AuthentikResponseError):
    """The request was refused as invalid; ``field_errors`` maps field names to their messages."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        detail: str,
        field_errors: dict[str, list[str]],
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, detail=detail, retry_after=retry_after)
        self.field_errors = field_errors


class AuthentikRateLimitError(AuthentikResponseError):
    """Too many requests; ``retry_after`` says when to come back, if the server said."""


class AuthentikServerError(AuthentikResponseError):
    """authentik (or a proxy in front of it) failed: a 5xx, or a crash while handling a write.

    authentik renders an unhandled exception through an error view that only serves GET, so a write that
    crashes (a lost unique-constraint race, for one) answers 405 with an empty body. The write may or may
    not have been applied: re-read before writing again.
    """
