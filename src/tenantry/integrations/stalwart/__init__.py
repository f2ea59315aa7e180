"""Stalwart (mail): a JMAP management client, its models and errors, publishable on its own.

``jmap``, ``client``, ``models`` and ``errors`` use nothing else from Tenantry; ``adapter`` (with ``zone``)
maps them onto the mail port and is imported from there, not from this package.
"""

from .client import StalwartClient
from .errors import StalwartError
from .jmap import JmapRequest, ref

__all__ = ["JmapRequest", "StalwartClient", "StalwartError", "ref"]
