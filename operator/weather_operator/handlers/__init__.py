"""Kopf handlers of the weather operator (thin adapters); importing this package registers them all.

Run with ``kopf run -m weather_operator.handlers --all-namespaces`` (or the
``weather-operator`` console script, which adds the production flags). Importing
``weather_operator`` or its ``api``/``render`` packages registers nothing.

Each handler only translates a Kopf callback into reconcile requests and updates of the
controller's memory (``weather_operator.controller``, which does the work):

* ``startup``/``login``: Kopf settings, the controller, credentials.
* ``fleet``: the WeatherProxy index; a new generation requests the fleet's reconcile.
* ``apikeys``: the ApiKey index (hashes); its events request its reconcile and its fleet's.
* ``children``: watch events of the children (status, fast repair).

No timers, daemons or mandatory delete handlers: Kopf would put a finalizer on every
WeatherProxy/ApiKey, and a finalizer blocks deletion while the operator is down.
Cleanup is the garbage collector's job (owner references).
"""

from __future__ import annotations

from weather_operator.handlers import apikeys, children, fleet, login, startup

__all__ = ["apikeys", "children", "fleet", "login", "startup"]
