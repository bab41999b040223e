"""Cross-field rules, each declared once: a CEL rule for the API server and its check for pydantic.

A model lists its rules in ``cel_rules`` (see ``base.CrdModel``): the CRD schema gets
them as ``x-kubernetes-validations`` and the model's validator runs their ``check``, with
the same message, so a bad spec gets one explanation whether the API server or the
operator catches it. ``tests/unit/operator/api/test_validation.py`` evaluates every CEL
rule beside its check on the same specs and requires them to agree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

VALIDATIONS_KEY = "x-kubernetes-validations"


@dataclasses.dataclass(frozen=True)
class Rule:
    """One cross-field rule of a model."""

    # The CEL expression the API server evaluates on the object (``self``).
    cel: str
    # Said by both the API server and pydantic when the rule is broken; names the field.
    message: str
    # True when the model instance satisfies the rule: the same condition as ``cel``.
    check: Callable[[Any], bool]
    # The field the API server blames (``.minReplicas``); the object itself when unset.
    field_path: str | None = None

    def entry(self) -> dict[str, str]:
        """The ``x-kubernetes-validations`` entry."""
        return rule(self.cel, self.message, self.field_path)


def rule(expression: str, message: str, field_path: str | None = None) -> dict[str, str]:
    """One ``x-kubernetes-validations`` entry."""
    out = {"rule": expression, "message": message}
    if field_path is not None:
        out["fieldPath"] = field_path
    return out


def schema_extra(*rules: dict[str, str]) -> dict[str, Any]:
    """A ``json_schema_extra`` holding CEL rules (prefer ``Rule`` in ``cel_rules``, checked too)."""
    return {VALIDATIONS_KEY: list(rules)}


def broken(rules: tuple[Rule, ...], model: Any) -> list[str]:
    """The messages of the rules ``model`` breaks, in declaration order."""
    return [r.message for r in rules if not r.check(model)]
