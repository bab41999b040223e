"""Real parts started locally for the tests, the benches, ``make dev`` and e2e.

A redis-server and a PostgreSQL from the Debian packages, weather-proxy processes (and the
kubelet-style volumes they read), the helm binary and the chart it renders, and the
reference token bucket the limiter is judged against. ``tests/``, ``bench/``, ``hack/`` and
``e2e/`` import them; nothing here imports ``tests``. The Kubernetes side (control plane,
node, images, Open-Meteo emulator) is :mod:`devcluster`. Not shipped with the proxy or the
operator.
"""
