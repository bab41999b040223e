"""Requests for reconciles, per kind: what the Kopf adapters, the reconcilers and the periodic loop ask for.

A request names an object, never carries its body (the reconcile starts from the latest
indexed one), so requests for an object coalesce in the queue (``workqueue``).
"""

from __future__ import annotations

from weather_operator.api import constants
from weather_operator.controller import workqueue

WEATHERPROXY = constants.WEATHERPROXY_KIND
APIKEY = constants.APIKEY_KIND


class Requests:
    """The queue as its producers see it: reconcile this fleet or this ApiKey (soon, or later)."""

    def __init__(self, queue: workqueue.WorkQueue) -> None:
        self.queue = queue

    def fleet(self, namespace: str, name: str, reason: str, delay: float = 0.0) -> None:
        self.queue.add(workqueue.Request(WEATHERPROXY, namespace, name), reason, delay)

    def apikey(self, namespace: str, name: str, reason: str, delay: float = 0.0) -> None:
        self.queue.add(workqueue.Request(APIKEY, namespace, name), reason, delay)

    def forget_fleet(self, namespace: str, name: str) -> None:
        """The fleet is gone: drop its scheduled request and backoff."""
        self.queue.forget(workqueue.Request(WEATHERPROXY, namespace, name))

    def forget_apikey(self, namespace: str, name: str) -> None:
        self.queue.forget(workqueue.Request(APIKEY, namespace, name))
