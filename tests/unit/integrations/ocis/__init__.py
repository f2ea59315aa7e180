"""Tests of the oCIS client and adapter."""
