"""The ``metav1.Condition`` shape used in the status of both custom resources."""

from __future__ import annotations

import datetime
import enum

from pydantic import Field

from weather_operator.api import base


class ConditionStatus(enum.StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(base.CrdModel):
    """One observation of the object's state (KEP-1623); a list of them is keyed on ``type``."""

    type: str = Field(
        ...,
        min_length=1,
        max_length=316,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
        description="Type of condition in CamelCase, e.g. Ready.",
    )
    status: ConditionStatus = Field(..., description="Status of the condition: True, False or Unknown.")
    observed_generation: int | None = Field(
        None, ge=0, description="The .metadata.generation the condition was set for."
    )
    last_transition_time: datetime.datetime = Field(
        ..., description="Last time the condition changed from one status to another."
    )
    reason: str = Field(
        ...,
        min_length=1,
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="Machine-readable CamelCase reason for the last transition.",
    )
    message: str = Field("", max_length=32768, description="Human-readable details of the transition.")
