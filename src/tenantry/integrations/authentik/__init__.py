"""authentik package."""
