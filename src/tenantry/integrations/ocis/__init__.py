"""oCIS (files): a LibreGraph client for project spaces and the adapter for the files step."""

from tenantry.integrations.ocis.adapter import OcisFileProvider
from tenantry.integrations.ocis.client import OcisClient
from tenantry.integrations.ocis.models import Drive, Permission

__all__ = ["Drive", "OcisClient", "OcisFileProvider", "Permission"]
