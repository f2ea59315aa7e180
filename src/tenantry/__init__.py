"""Tenantry: the control plane for self-hosted collaboration workspaces."""
