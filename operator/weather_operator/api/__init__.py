"""pydantic models of the custom resources: the single source of truth of the CRDs."""

from __future__ import annotations

from weather_operator.api import apikey, conditions, constants, effective, presets, weatherproxy

__all__ = ["apikey", "conditions", "constants", "effective", "presets", "weatherproxy"]
