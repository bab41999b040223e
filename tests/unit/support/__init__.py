"""Tests of the test-support code itself."""
