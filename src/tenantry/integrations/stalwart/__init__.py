"""stalwart package."""
