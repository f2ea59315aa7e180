"""Stalwart conformance: its management JMAP API as Stalwart's own tests and code say it behaves.

Runs against the sandbox by default. With ``TENANTRY_CONFORMANCE_STALWART_URL`` (the server's root URL) and
``TENANTRY_CONFORMANCE_STALWART_API_KEY`` (an API key of an administrator) set, it runs against that server
instead, creating objects under unique names and removing them afterwards.
"""
