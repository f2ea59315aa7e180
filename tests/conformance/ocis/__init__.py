"""oCIS conformance: what oCIS's graph service and acceptance features assert about project spaces."""
