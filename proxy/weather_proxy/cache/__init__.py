"""Weather and geocoding caches: L1 in-process, L2 Redis, stale-while-revalidate, coalescing."""
