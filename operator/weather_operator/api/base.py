"""The base of every custom-resource model: camelCase aliases, unknown fields rejected, rules checked."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator
from pydantic.alias_generators import to_camel

from weather_operator.api import cel


def _rules_schema(schema: dict[str, Any], cls: type) -> None:
    rules: tuple[cel.Rule, ...] = getattr(cls, "cel_rules", ())
    if rules:
        schema[cel.VALIDATIONS_KEY] = [r.entry() for r in rules]


def crd_config(json_schema_extra: dict[str, Any] | None = None) -> ConfigDict:
    """The model config of every CRD model.

    Its JSON schema carries the model's ``cel_rules``; a ``json_schema_extra`` given here
    replaces them (rules declared as plain dicts are not checked by pydantic).
    """
    return ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        json_schema_extra=json_schema_extra if json_schema_extra is not None else _rules_schema,
    )


class CrdModel(BaseModel):
    """A part of a CRD spec or status.

    Fields are snake_case in Python and camelCase on the wire; unknown fields are
    rejected (the API server prunes them, pydantic names them). ``cel_rules`` are the
    model's cross-field rules: ``x-kubernetes-validations`` in the CRD and checked here.
    """

    model_config = crd_config()

    cel_rules: ClassVar[tuple[cel.Rule, ...]] = ()

    @model_validator(mode="after")
    def _check_cel_rules(self) -> Self:
        messages = cel.broken(type(self).cel_rules, self)
        if messages:
            raise ValueError("; ".join(messages))
        return self

    def to_camel_dict(self) -> dict[str, Any]:
        """The fields that were set, as the camelCase dict the API server stores."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# A Kubernetes IntOrString (e.g. a PDB's minAvailable: 1 or "50%", a resource quantity).
IntOrString = Annotated[int | str, WithJsonSchema({"x-kubernetes-int-or-string": True})]
# A resource quantity, the value of a requests or limits entry (an IntOrString with its description).
Quantity = Annotated[
    int | str,
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "description": "A quantity of the resource named by the key, e.g. cpu: 100m, memory: 128Mi.",
        }
    ),
]
# The values of a map of labels and of annotations.
LabelValue = Annotated[str, Field(description="Value of the label named by the key.")]
AnnotationValue = Annotated[str, Field(description="Value of the annotation named by the key.")]

DNS_1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$"
