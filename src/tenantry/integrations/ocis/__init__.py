"""ocis package."""
