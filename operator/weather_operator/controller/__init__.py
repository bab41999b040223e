"""The controller: what turns watch events into reconciles, and remembers between them.

``handlers`` (the Kopf adapters) translate Kopf's callbacks into requests in the one
work queue and updates of the per-object memory; the reconcilers do the work:

* ``workqueue``/``requests``: the coalescing queue, and the requests of each kind;
* ``indexes``: the views of Kopf's two indexes the reconciles start from;
* ``memory``: one record per WeatherProxy and per ApiKey (its parts: ``children``,
  ``keysync``, the status last written);
* ``fleets``/``apikeys``: one reconciler per kind, walking plan (render, pure) -> apply ->
  observe -> status (pure) -> write the status when it changed;
* ``periodic``: the background loop (drift repair, re-checks);
* ``connection``, ``tasks``, ``runtime``: the API client, the background tasks, and the
  ``Controller`` that wires them together at startup.
"""
