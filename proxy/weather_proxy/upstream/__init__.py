"""The Open-Meteo upstream: HTTP client, retries, circuit breaker, WMO codes."""
