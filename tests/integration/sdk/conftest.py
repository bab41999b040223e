"""Fixtures of the SDK suites: a proxy + emulator stack with one key per scenario."""

from __future__ import annotations

from tests.integration.sdk.stack import sdk_stack  # noqa: F401
