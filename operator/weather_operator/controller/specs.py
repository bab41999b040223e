"""Reading a custom resource's spec into its model (a WeatherProxy's with its preset), for the reconciles.

The API server has already validated the spec against the CRD schema and CEL rules; a
spec the models still reject (a rule the schema cannot express) is ``InvalidSpec``: the
reconcile writes it as a condition naming the field and the rule, and waits for the
user's next change (retrying cannot fix it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import pydantic

from weather_operator.api import effective, resolve, weatherproxy

Spec = TypeVar("Spec", bound=pydantic.BaseModel)

REASON = "InvalidSpec"


class InvalidSpec(ValueError):
    """The spec passed the schema but not the models; ``str()`` names every bad field and rule."""


def parse(model: type[Spec], body: Mapping[str, Any]) -> Spec:
    """``body.spec`` as ``model``; raises InvalidSpec naming every bad field."""
    try:
        return model.model_validate(dict(body.get("spec") or {}))
    except pydantic.ValidationError as exc:
        raise InvalidSpec(describe(exc)) from None


def describe(exc: pydantic.ValidationError) -> str:
    problems = "; ".join(
        f"spec.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" if err["loc"] else f"spec: {err['msg']}"
        for err in exc.errors()
    )
    return f"invalid spec: {problems}"


def fleet_spec(body: Mapping[str, Any], default_image: str) -> effective.EffectiveSpec:
    """A WeatherProxy's spec with its preset applied; raises InvalidSpec."""
    spec = parse(weatherproxy.WeatherProxySpec, body)
    try:
        return resolve.effective(spec, default_image=default_image)
    except ValueError as exc:
        raise InvalidSpec(f"invalid spec: {exc}") from None
