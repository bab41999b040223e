"""Fixtures of the SDK suites: a proxy + emulator stack with one key per scenario, and PostgreSQL."""

from __future__ import annotations

from testbed.postgres_server import postgres_server  # noqa: F401
from tests.integration.sdk.stack import sdk_stack, weather_stack  # noqa: F401
