"""Developer tooling: the local dev stack (``python -m hack.dev``) and measurement scripts."""
