"""Conformance suites: what each upstream's own tests assert, run against the sandbox or a real server."""
