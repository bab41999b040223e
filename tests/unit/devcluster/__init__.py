"""Tests of the development tooling (devcluster/) that need no services."""
