"""Kubernetes Events about the custom resources; never containing a key (only prefixes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import kopf

NORMAL = "Normal"
WARNING = "Warning"


def post(body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
    """Queue an Event about ``body`` (a Kopf body or a plain dict read from the API)."""
    kopf.event(cast(kopf.Body, body), type=type_, reason=reason, message=message)


def info(body: Mapping[str, Any], reason: str, message: str) -> None:
    post(body, NORMAL, reason, message)


def warn(body: Mapping[str, Any], reason: str, message: str) -> None:
    post(body, WARNING, reason, message)
