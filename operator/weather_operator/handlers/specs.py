"""Reading a custom resource's spec into its model, for the handlers.

The API server has already validated the spec against the CRD schema and CEL rules;
a spec the models still reject is a permanent error that only the user can fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import kopf
import pydantic

Spec = TypeVar("Spec", bound=pydantic.BaseModel)


def parse(model: type[Spec], body: Mapping[str, Any]) -> Spec:
    """``body.spec`` as ``model``; raises kopf.PermanentError naming every bad field."""
    try:
        return model.model_validate(dict(body.get("spec") or {}))
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"spec.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise kopf.PermanentError(f"invalid spec: {problems}") from None
