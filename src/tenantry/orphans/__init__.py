"""Orphans: upstream objects that carry Tenantry's marker but that no tenant holds."""
