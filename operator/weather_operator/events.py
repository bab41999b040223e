"""Kubernetes Events about the custom resources; never containing a key (only prefixes)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, cast

import kopf

logger = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"


def post(body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
    """Queue an Event about ``body`` (a Kopf body or a plain dict read from the API).

    Kopf posts Events from the tasks it runs for objects (and the tasks they start);
    elsewhere (e.g. a handler function called directly) the Event is only logged.
    """
    try:
        kopf.event(cast(kopf.Body, body), type=type_, reason=reason, message=message)
    except LookupError:
        metadata = body.get("metadata") or {}
        logger.info(
            "%s event for %s/%s (not posted outside Kopf's processing): %s: %s",
            type_,
            metadata.get("namespace"),
            metadata.get("name"),
            reason,
            message,
        )


def info(body: Mapping[str, Any], reason: str, message: str) -> None:
    post(body, NORMAL, reason, message)


def warn(body: Mapping[str, Any], reason: str, message: str) -> None:
    post(body, WARNING, reason, message)
