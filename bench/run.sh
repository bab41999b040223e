#!/bin/sh
# Run the benchmarks from the repository root with the project's virtualenv (see bench/README.md).
set -eu
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
exec "$PYTHON" -m bench "$@"
