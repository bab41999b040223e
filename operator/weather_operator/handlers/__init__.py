"""Kopf handlers of the weather operator; importing this package registers them all.

Run with ``kopf run -m weather_operator.handlers --all-namespaces`` (or the
``weather-operator`` console script, which adds the production flags).
"""

from __future__ import annotations

from weather_operator.handlers import apikeys, children, fleet, login, periodic, startup

__all__ = ["apikeys", "children", "fleet", "login", "periodic", "startup"]
