"""Stalwart (mail): JMAP management client, its models and errors, and the mail-step adapter."""

from .adapter import StalwartMailProvider
from .client import JmapRequest, StalwartClient, ref
from .errors import StalwartError

__all__ = ["JmapRequest", "StalwartClient", "StalwartError", "StalwartMailProvider", "ref"]
