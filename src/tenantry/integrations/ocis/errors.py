"""Errors the oCIS LibreGraph client raises.

OcisError
├── OcisConnectionError            oCIS could not be reached (refused, reset, DNS, TLS)
├── OcisTimeoutError               oCIS did not answer in time
└── OcisResponseError              an error answer: status, code, message, request_id, retry_after
    ├── OcisInvalidRequestError    400 (bad name, unknown field, purge of an enabled space)
    ├── OcisAuthError              401 (the proxy refused the credentials; usually an empty body)
    ├── OcisForbiddenError         403 (missing permission, e.g. not a Space Admin)
    ├── OcisNotFoundError          404 (missing, or hidden from this user)
    ├── OcisConflictError          409 (nameAlreadyExists)
    ├── OcisRateLimitError         429
    ├── OcisNotSupportedError      501 (e.g. an unsupported $filter)
    └── OcisServerError            other 5xx
"""

from __future__ import annotations


class OcisError(Exception):
    """Base of every error the oCIS client raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class OcisConnectionError(OcisError):
    """The request did not reach oCIS, or the connection broke before an answer."""


class OcisTimeoutError(OcisError):
    """oCIS did not answer within the timeout."""


class OcisResponseError(OcisError):
    """oCIS answered with an error status (or an answer the client cannot read).

    ``code`` and ``message`` come from the OData error body when there is one; ``request_id`` helps
    finding the request in oCIS's logs; ``retry_after`` is the ``Retry-After`` hint in seconds.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.request_id = request_id
        self.retry_after = retry_after


class OcisInvalidRequestError(OcisResponseError):
    """400: oCIS refused the request as invalid."""


class OcisAuthError(OcisResponseError):
    """401: the credentials were not accepted."""


class OcisForbiddenError(OcisResponseError):
    """403: the authenticated user may not do this."""


class OcisNotFoundError(OcisResponseError):
    """404: no such drive or permission (or the user cannot see it)."""


class OcisConflictError(OcisResponseError):
    """409: the object already exists."""


class OcisRateLimitError(OcisResponseError):
    """429: too many requests; see ``retry_after``."""


class OcisNotSupportedError(OcisResponseError):
    """501: oCIS does not implement this (query) feature."""


class OcisServerError(OcisResponseError):
    """5xx: oCIS failed on its side."""


_BY_STATUS: dict[int, type[OcisResponseError]] = {
    400: OcisInvalidRequestError,
    401: OcisAuthError,
    403: OcisForbiddenError,
    404: OcisNotFoundError,
    409: OcisConflictError,
    429: OcisRateLimitError,
    501: OcisNotSupportedError,
}


def error_class_for(status: int) -> type[OcisResponseError]:
    """The most specific error class for an HTTP error status."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return OcisServerError
    return OcisResponseError
