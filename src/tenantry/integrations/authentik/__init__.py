"""authentik: the wire client for its admin REST API and the identity-step adapter over it."""

from tenantry.integrations.authentik.adapter import AuthentikIdentityProvider, translate_error
from tenantry.integrations.authentik.client import AuthentikClient
from tenantry.integrations.authentik.errors import (
    AuthentikAuthError,
    AuthentikConnectionError,
    AuthentikError,
    AuthentikNotFoundError,
    AuthentikRateLimitError,
    AuthentikResponseError,
    AuthentikServerError,
    AuthentikTimeoutError,
    AuthentikValidationError,
)
from tenantry.integrations.authentik.models import Group

__all__ = [
    "AuthentikAuthError",
    "AuthentikClient",
    "AuthentikConnectionError",
    "AuthentikError",
    "AuthentikIdentityProvider",
    "AuthentikNotFoundError",
    "AuthentikRateLimitError",
    "AuthentikResponseError",
    "AuthentikServerError",
    "AuthentikTimeoutError",
    "AuthentikValidationError",
    "Group",
    "translate_error",
]
