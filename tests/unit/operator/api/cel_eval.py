"""Evaluate a CRD schema's CEL rules (x-kubernetes-validations) on an object, with cel-python.

Not the API server's CEL (no cost limits, no Kubernetes extension libraries), but the
same language: enough to show each rule parses and accepts or rejects what it should.
The control-plane integration suite replays the same specs against a real API server.
"""

from __future__ import annotations

from typing import Any

import celpy


def compile_rule(rule: str) -> Any:
    env = celpy.Environment()
    return env.program(env.compile(rule))


def failed_messages(schema: dict[str, Any], value: Any) -> list[str]:
    """Messages of every rule that ``value`` (and its children) breaks."""
    if value is None:
        return []
    failures = [
        entry["message"]
        for entry in schema.get("x-kubernetes-validations", [])
        if not bool(compile_rule(entry["rule"]).evaluate({"self": celpy.json_to_cel(value)}))
    ]
    if isinstance(value, dict):
        for key, sub in value.items():
            if key in schema.get("properties", {}):
                failures += failed_messages(schema["properties"][key], sub)
            elif isinstance(schema.get("additionalProperties"), dict):
                failures += failed_messages(schema["additionalProperties"], sub)
    if isinstance(value, list) and "items" in schema:
        for item in value:
            failures += failed_messages(schema["items"], item)
    return failures
