"""authentik: a wire client for its admin REST API (groups), publishable on its own.

``client``, ``models`` and ``errors`` use nothing else from Tenantry; ``adapter`` maps them onto the
identity port and is imported from there, not from this package.
"""

from .client import AuthentikClient
from .errors import (
    AuthentikAuthError,
    AuthentikConnectionError,
    AuthentikError,
    AuthentikForbiddenError,
    AuthentikNotFoundError,
    AuthentikRateLimitError,
    AuthentikResponseError,
    AuthentikServerError,
    AuthentikTimeoutError,
    AuthentikValidationError,
)
from .models import Group

__all__ = [
    "AuthentikAuthError",
    "AuthentikClient",
    "AuthentikConnectionError",
    "AuthentikError",
    "AuthentikForbiddenError",
    "AuthentikNotFoundError",
    "AuthentikRateLimitError",
    "AuthentikResponseError",
    "AuthentikServerError",
    "AuthentikTimeoutError",
    "AuthentikValidationError",
    "Group",
]
