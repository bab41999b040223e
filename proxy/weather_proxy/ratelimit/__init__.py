"""Per-key rate limits (the `limits` library), fleet-wide in Redis, per process as fallback."""
