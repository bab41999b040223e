"""The SDK's version: the project's (tests/unit/delivery/test_sdk_versions.py keeps them in step)."""

__version__ = "0.1.0"
