"""Kopf operator for weather-proxy fleets."""
