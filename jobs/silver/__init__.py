"""Silver: one cleaned, deduplicated table per entity (orders, shipments, tracking_events, interactions,
customers), identity resolution (``identity``) and keyed PII hashing (``pii``); MERGE, first arrival wins."""
