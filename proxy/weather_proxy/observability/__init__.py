"""Metrics, logs and traces of the proxy."""
