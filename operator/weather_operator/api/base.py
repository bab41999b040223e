"""The base of every custom-resource model: camelCase aliases, unknown fields rejected."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, WithJsonSchema
from pydantic.alias_generators import to_camel


def crd_config(json_schema_extra: dict[str, Any] | None = None) -> ConfigDict:
    """The model config of every CRD model, optionally with extra JSON schema (CEL rules)."""
    return ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        json_schema_extra=json_schema_extra,
    )


class CrdModel(BaseModel):
    """A part of a CRD spec or status.

    Fields are snake_case in Python and camelCase on the wire; unknown fields are
    rejected (the API server prunes them, pydantic names them).
    """

    model_config = crd_config()

    def to_camel_dict(self) -> dict[str, Any]:
        """The fields that were set, as the camelCase dict the API server stores."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# A Kubernetes IntOrString (e.g. a PDB's minAvailable: 1 or "50%", a resource quantity).
IntOrString = Annotated[int | str, WithJsonSchema({"x-kubernetes-int-or-string": True})]

DNS_1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$"
