"""Mail domains: which names a tenant may use, DNS lookups, live checks of published records, ownership proof."""
