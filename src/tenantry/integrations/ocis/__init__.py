"""oCIS (files): a LibreGraph client for project spaces and their members, publishable on its own.

``client``, ``models`` and ``errors`` use nothing else from Tenantry; ``adapter`` maps them onto the
files port and is imported from there, not from this package.
"""

from .client import OcisClient
from .errors import OcisError
from .models import Drive, Permission

__all__ = ["Drive", "OcisClient", "OcisError", "Permission"]
