"""CEL validation rules (``x-kubernetes-validations``) attached to the models' JSON schema.

The same rules are enforced by pydantic validators with the same messages, so a bad
spec gets one explanation whether the API server or the operator catches it.
"""

from __future__ import annotations

from typing import Any

VALIDATIONS_KEY = "x-kubernetes-validations"


def rule(expression: str, message: str, field_path: str | None = None) -> dict[str, str]:
    """One ``x-kubernetes-validations`` entry."""
    out = {"rule": expression, "message": message}
    if field_path is not None:
        out["fieldPath"] = field_path
    return out


def schema_extra(*rules: dict[str, str]) -> dict[str, Any]:
    """A ``json_schema_extra`` holding CEL rules."""
    return {VALIDATIONS_KEY: list(rules)}
