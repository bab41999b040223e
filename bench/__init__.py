"""Benchmarks of the weather proxy: throughput vs. bare FastAPI, and upstream-call counts.

Run with ``python -m bench`` (or ``bench/run.sh``). Prints numbers; asserts nothing.
"""
