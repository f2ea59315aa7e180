"""Domain errors of the service, each with the HTTP status and error code one handler turns it into."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, detail: Any, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(str(detail))
        self.detail = detail
        self.headers = headers


class NotFoundError(AppError):
    status_code = 404
    code = "not_found"


class ConflictError(AppError):
    status_code = 409
    code = "conflict"


class ForbiddenError(AppError):
    status_code = 403
    code = "forbidden"


class InvalidInputError(AppError):
    status_code = 422
    code = "validation_error"


class UnavailableError(AppError):
    status_code = 503
    code = "unavailable"


class RateLimitedError(AppError):
    status_code = 429
    code = "rate_limited"


class PreconditionFailedError(AppError):
    status_code = 412
    code = "precondition_failed"
