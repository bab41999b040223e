"""Fixtures for the tests of the test-support code."""

from devcluster.fixtures import openmeteo  # noqa: F401
from testbed.redis_server import redis_server, redis_url  # noqa: F401
