"""Development tooling: a local Kubernetes control plane and node, images, the Open-Meteo emulator.

Not shipped with the proxy or the operator. ``hack/``, ``bench/``, ``e2e/`` and ``tests/``
import it; ``python -m devcluster`` is its command line.
"""
