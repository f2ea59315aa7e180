"""How oCIS client (and token) errors become step errors: what is retried, and what a human must fix."""

from __future__ import annotations

from tenantry.integrations.errors import PermanentStepError, Reason, StepError, TransientStepError
from tenantry.integrations.oauth import OAuthError, OAuthRejectedError, OAuthTimeoutError

from .errors import (
    OcisAuthError,
    OcisConflictError,
    OcisConnectionError,
    OcisError,
    OcisForbiddenError,
    OcisInvalidRequestError,
    OcisNotFoundError,
    OcisNotSupportedError,
    OcisRateLimitError,
    OcisServerError,
    OcisTimeoutError,
)


def translate_error(  # noqa: PLR0911 - one case per error class reads best
    err: OcisError | OAuthError, *, credentials: str
) -> StepError:
    """The one place oCIS client (and token) errors become step errors: what is retried, what a human must fix."""
    match err:
        case OAuthError():
            return _token_error(err, credentials=credentials)
        case OcisAuthError():
            return PermanentStepError(
                f"oCIS rejected the credentials (401); check {credentials}", reason=Reason.AUTHENTICATION_FAILED
            )
        case OcisForbiddenError():
            return PermanentStepError(
                f"{err.message}; the service user needs the oCIS Space Admin role", reason=Reason.FORBIDDEN
            )
        case OcisInvalidRequestError():
            return PermanentStepError(err.message, reason=Reason.VALIDATION_FAILED)
        case OcisNotFoundError():
            return PermanentStepError(
                f"{err.message}; check that the configured oCIS URL is the server's origin", reason=Reason.NOT_FOUND
            )
        case OcisConflictError():
            return PermanentStepError(err.message, reason=Reason.NAME_CONFLICT)
        case OcisNotSupportedError():
            return PermanentStepError(
                f"{err.message}; this oCIS release lacks a feature Tenantry needs", reason=Reason.UNSUPPORTED_UPSTREAM
            )
        case OcisRateLimitError():
            return TransientStepError(err.message, reason=Reason.RATE_LIMITED, retry_after=err.retry_after)
        case OcisServerError():
            return TransientStepError(err.message, reason=Reason.UPSTREAM_ERROR, retry_after=err.retry_after)
        case OcisTimeoutError():
            return TransientStepError(err.message, reason=Reason.UPSTREAM_TIMEOUT)
        case OcisConnectionError():
            return TransientStepError(err.message, reason=Reason.UPSTREAM_UNREACHABLE)
        case _:
            # Another status, or a body the client cannot read: retrying the same call won't help.
            return PermanentStepError(
                f"{err.message}; check that the configured oCIS URL is the origin of a supported oCIS release",
                reason=Reason.UNEXPECTED_RESPONSE,
            )


def _token_error(err: OAuthError, *, credentials: str) -> StepError:
    # The token module has already sorted its errors into "refused" (permanent) and "unavailable" (retry).
    if isinstance(err, OAuthRejectedError):
        return PermanentStepError(f"{err.message}; check {credentials}", reason=Reason.AUTHENTICATION_FAILED)
    if isinstance(err, OAuthTimeoutError):
        reason = Reason.UPSTREAM_TIMEOUT
    elif err.status is None:
        reason = Reason.UPSTREAM_UNREACHABLE
    else:
        reason = Reason.RATE_LIMITED if err.status == 429 else Reason.UPSTREAM_ERROR
    return TransientStepError(err.message, reason=reason, retry_after=err.retry_after)
