"""Kopf handlers of the weather operator; importing this package registers them all.

Run with ``kopf run -m weather_operator.handlers --all-namespaces`` (or the
``weather-operator`` console script, which adds the production flags). Importing
``weather_operator`` or its ``api``/``render`` packages registers nothing.

* ``startup``/``login``: Kopf settings, the shared runtime state, credentials.
* ``fleet``: WeatherProxy -> its children (server-side apply), status.
* ``apikeys`` + ``keysync``: ApiKey -> its key Secret, hashes -> the fleet's keys.yaml.
* ``children``: watch events of the children (status, fast repair).
* ``periodic``: one background loop (drift repair, monitoring and ApiKey re-checks).

No timers, daemons or mandatory delete handlers: Kopf would put a finalizer on every
WeatherProxy/ApiKey, and a finalizer blocks deletion while the operator is down.
Cleanup is the garbage collector's job (owner references).
"""

from __future__ import annotations

from weather_operator.handlers import apikeys, children, fleet, login, periodic, startup

__all__ = ["apikeys", "children", "fleet", "login", "periodic", "startup"]
