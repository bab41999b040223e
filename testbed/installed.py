"""What a test needs installed on the machine: present, or a skip (locally) / a failure (CI=true)."""

from __future__ import annotations

import os
from typing import TypeVar

import pytest

T = TypeVar("T")


def require(found: T | None, reason: str) -> T:
    """``found``, or skip with ``reason`` (locally) / fail (CI=true: a missing tool is never a skip)."""
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI=true, so this is a failure, not a skip")
        pytest.skip(reason)
    return found
