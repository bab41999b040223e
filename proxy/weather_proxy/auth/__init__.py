"""API keys: lookup by SHA-256, expiry, disabled keys."""
