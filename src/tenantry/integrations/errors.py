"""Domain errors a provisioning step raises; adapters translate their client's errors into these.

StepError
├── TransientStepError   retried automatically with backoff (connection, timeout, 429, 5xx)
└── PermanentStepError   stops retrying; the message says what a human must fix (400, 401/403, conflicts)
"""

from __future__ import annotations


class StepError(Exception):
    """A step could not reach its desired state. ``reason`` is a CamelCase condition reason."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


class TransientStepError(StepError):
    """Worth retrying later; ``retry_after`` (seconds) is the upstream's own hint, if it gave one."""

    def __init__(self, message: str, *, reason: str = "UpstreamUnavailable", retry_after: float | None = None) -> None:
        super().__init__(message, reason=reason)
        self.retry_after = retry_after


class PermanentStepError(StepError):
    """Retrying will not help until someone changes the configuration or the upstream."""
