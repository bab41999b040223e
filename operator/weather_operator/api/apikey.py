"""The ``ApiKey`` custom resource: one consumer key of a WeatherProxy fleet."""

from __future__ import annotations

import datetime

from pydantic import Field

from weather_operator.api import base
from weather_operator.api import conditions as conditions_
from weather_proxy import config

DEFAULT_ROTATION_GRACE_PERIOD_SECONDS = 3600


class ProxyRef(base.CrdModel):
    name: str = Field(
        ...,
        min_length=1,
        max_length=253,
        pattern=base.DNS_1123_SUBDOMAIN,
        description="Name of a WeatherProxy in the same namespace.",
    )


class ApiKeySpec(base.CrdModel):
    """A key for the fleet named by proxyRef; its plaintext lives only in its own Secret."""

    proxy_ref: ProxyRef = Field(..., description="The WeatherProxy this key is valid for.")
    description: str | None = Field(None, max_length=1024, description="Who or what uses this key.")
    rate_limit: config.Limit | None = Field(
        None, description="Rate limit of this key; the fleet default when unset."
    )
    expires_at: datetime.datetime | None = Field(
        None, description="RFC 3339 time after which the key is rejected (403)."
    )
    disabled: bool | None = Field(None, description="Reject this key (403) without deleting it.")
    scopes: config.Scopes | None = Field(
        None,
        description=(
            "What the key may call: weather:read (/v1/weather, /weather), usage:read (/v1/usage), "
            "analytics:read (/v1/analytics/*); each at most once. Unset: weather:read and usage:read. "
            "A route the key lacks the scope of answers 403 insufficient-scope."
        ),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    secret_name: str | None = Field(
        None,
        min_length=1,
        max_length=253,
        pattern=base.DNS_1123_SUBDOMAIN,
        description="Secret holding the plaintext key (key apiKey); generated when absent.",
    )
    rotation: int | None = Field(
        None, ge=0, description="Bump to generate a new key; the old one stays valid for the grace period."
    )
    rotation_grace_period_seconds: int = Field(
        DEFAULT_ROTATION_GRACE_PERIOD_SECONDS,
        ge=0,
        le=30 * 86400,
        description="How long the previous key stays valid after a rotation.",
    )


class ApiKeyStatus(base.CrdModel):
    """What the operator observed; written to the status subresource only."""

    observed_generation: int | None = Field(
        None, ge=0, description="The .metadata.generation last reconciled."
    )
    secret_name: str | None = Field(None, description="Secret holding the plaintext key (key apiKey).")
    key_prefix: str | None = Field(
        None,
        max_length=16,
        description="First 8 characters of the key, to recognise it; unset for a key shorter than 32 "
        "characters (one of your own), of which they would give away too much.",
    )
    expires_at: datetime.datetime | None = Field(None, description="When the key expires, if ever.")
    expired: bool | None = Field(None, description="The key is past expiresAt.")
    rotation: int | None = Field(
        None, ge=0, description="The spec.rotation the current key was generated for."
    )
    rotated_at: datetime.datetime | None = Field(None, description="When the current key was generated.")
    previous_key_prefix: str | None = Field(
        None, max_length=16, description="keyPrefix of the key replaced by the last rotation."
    )
    previous_key_expires_at: datetime.datetime | None = Field(
        None, description="When the key replaced by the last rotation stops being accepted."
    )
    conditions: list[conditions_.Condition] | None = Field(
        None,
        description="Ready and the conditions that explain it.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
