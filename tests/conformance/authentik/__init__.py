"""authentik conformance: its groups API as authentik's own API tests and code say it behaves.

Runs against the sandbox by default. With ``TENANTRY_CONFORMANCE_AUTHENTIK_URL`` (the server's root URL) and
``TENANTRY_CONFORMANCE_AUTHENTIK_TOKEN`` (an API token of a superuser) set, it runs against that server
instead, creating groups under a unique name prefix and deleting them afterwards.
"""
