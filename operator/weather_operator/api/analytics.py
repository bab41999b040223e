"""WeatherProxy ``spec.analytics``: usage history in PostgreSQL, its database, retention and erasure.

``AnalyticsSpec`` is the CRD part (every field optional; unset fields take the environment's
preset, :data:`PRESETS`); :func:`resolve` turns it into :class:`EffectiveAnalytics`, the only
thing the renderers (``weather_operator.render.postgres``) read. The database is either
Managed — a CloudNativePG ``Cluster`` when its CRDs are served, else a one-replica StatefulSet
run by the operator — or External, reached through a URL kept in a Secret (no password in it;
the password, when the server wants one, in a second Secret key).

This module imports nothing of ``api.weatherproxy``, so that module can import it.
"""

from __future__ import annotations

import enum
import types
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from weather_operator.api import base, cel, effective
from weather_proxy import config

# Used when neither spec.analytics.database.managed.image nor the operator names one. Debian
# bookworm's PostgreSQL (15): what the local image (devcluster.images) is built from too.
DEFAULT_POSTGRES_IMAGE = "postgres:15-bookworm"
IMAGE_PATTERN = (
    r"^[a-z0-9]([a-z0-9._/:-]*[a-z0-9])?(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$"
)
RETENTION_DAYS_MIN = 1
RETENTION_DAYS_MAX = 3660  # the proxy's own bound (weather_proxy.config.Analytics)
DEFAULT_RETENTION_DAYS = 90
DEFAULT_ERASE_ON_KEY_DELETE = True
INSTANCES_MAX = 5

EXTERNAL_NEEDS_URL = (
    "spec.analytics.database.external.urlSecretRef is required when spec.analytics.database.mode is External"
)
EXTERNAL_WITHOUT_MANAGED = (
    "spec.analytics.database.managed must not be set when spec.analytics.database.mode is External"
)
MANAGED_WITHOUT_EXTERNAL = (
    "spec.analytics.database.external must not be set unless spec.analytics.database.mode is External"
)


class DatabaseMode(enum.StrEnum):
    MANAGED = "Managed"
    EXTERNAL = "External"


class DatabaseSecretKeyRef(base.CrdModel):
    """A key of a Secret in the WeatherProxy's namespace."""

    name: str = Field(
        ..., min_length=1, max_length=253, pattern=base.DNS_1123_SUBDOMAIN, description="Secret name."
    )
    key: str = Field(
        ..., min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$", description="Key in the Secret."
    )


class DatabaseStorage(base.CrdModel):
    size: str | None = Field(
        None,
        pattern=base.QUANTITY,
        description="Size of the database volume, e.g. 10Gi. Preset: 2Gi in staging, 10Gi in production.",
    )
    storage_class_name: str | None = Field(
        None, max_length=253, description="StorageClass of the volume; the cluster default when unset."
    )


class DatabaseResources(base.CrdModel):
    """Compute resources of the PostgreSQL container (requests and limits)."""

    requests: dict[str, base.Quantity] | None = Field(
        None, description="Minimum resources, e.g. {cpu: 100m, memory: 256Mi}."
    )
    limits: dict[str, base.Quantity] | None = Field(
        None, description="Maximum resources, e.g. {memory: 512Mi}."
    )


class ManagedDatabase(base.CrdModel):
    """The database the operator runs: a CloudNativePG Cluster when its CRDs exist, else a StatefulSet."""

    image: str | None = Field(
        None,
        max_length=512,
        pattern=IMAGE_PATTERN,
        description=f"PostgreSQL image (imageName of a CloudNativePG Cluster); {DEFAULT_POSTGRES_IMAGE} "
        "for the StatefulSet and CloudNativePG's own default for a Cluster when unset.",
    )
    instances: int | None = Field(
        None,
        ge=1,
        le=INSTANCES_MAX,
        description="PostgreSQL instances of a CloudNativePG Cluster (one primary, the rest replicas); "
        "the StatefulSet always runs one. Preset: 1 in staging, 2 in production.",
    )
    storage: DatabaseStorage | None = Field(None, description="The database's PersistentVolumeClaim.")
    resources: DatabaseResources | None = Field(None, description="Compute resources of PostgreSQL.")


class ExternalDatabase(base.CrdModel):
    url_secret_ref: DatabaseSecretKeyRef = Field(
        ...,
        description="Secret key holding the postgresql:// URL (user, host, port, database; no password).",
    )
    password_secret_ref: DatabaseSecretKeyRef | None = Field(
        None, description="Secret key holding the database password, when the server asks for one."
    )


class DatabaseSpec(base.CrdModel):
    """Where the history lives: Managed (run by the operator, the default) or External."""

    cel_rules = (
        cel.Rule(
            "!has(self.mode) || self.mode != 'External' || has(self.external)",
            EXTERNAL_NEEDS_URL,
            lambda s: s.mode is not DatabaseMode.EXTERNAL or s.external is not None,
            ".external",
        ),
        cel.Rule(
            "!has(self.mode) || self.mode != 'External' || !has(self.managed)",
            EXTERNAL_WITHOUT_MANAGED,
            lambda s: s.mode is not DatabaseMode.EXTERNAL or s.managed is None,
            ".managed",
        ),
        cel.Rule(
            "(has(self.mode) && self.mode == 'External') || !has(self.external)",
            MANAGED_WITHOUT_EXTERNAL,
            lambda s: s.mode is DatabaseMode.EXTERNAL or s.external is None,
            ".external",
        ),
    )

    mode: DatabaseMode | None = Field(None, description="Managed (default) or External.")
    managed: ManagedDatabase | None = None
    external: ExternalDatabase | None = Field(
        None,
        description="A PostgreSQL you run, reached through a URL in a Secret; required when mode is "
        "External, refused otherwise.",
    )


class AnalyticsSpec(base.CrdModel):
    """Usage history and analytics in PostgreSQL: one row per request (key id, never the key or client IP)."""

    enabled: bool | None = Field(
        None, description="Record usage history and serve /v1/analytics. Preset: off in dev, on elsewhere."
    )
    database: DatabaseSpec | None = None
    retention_days: int | None = Field(
        None,
        ge=RETENTION_DAYS_MIN,
        le=RETENTION_DAYS_MAX,
        description=f"Whole UTC days of history kept (older daily partitions are dropped); "
        f"{DEFAULT_RETENTION_DAYS} when unset.",
    )
    erase_on_key_delete: bool | None = Field(
        None,
        description="Erase a deleted ApiKey's history within a day (a Job of the proxy image); "
        "true when unset.",
    )


# The resolved form lives with the other resolved models (EffectiveSpec carries it).
EffectiveAnalytics = effective.EffectiveAnalytics


def _resources(cpu: str, memory: str, memory_limit: str) -> Mapping[str, Mapping[str, str]]:
    return types.MappingProxyType(
        {
            "requests": types.MappingProxyType({"cpu": cpu, "memory": memory}),
            "limits": types.MappingProxyType({"memory": memory_limit}),
        }
    )


# Per-environment defaults, the fields api.presets.Preset would carry (analytics_*).
PRESETS: Mapping[config.Environment, Mapping[str, Any]] = types.MappingProxyType(
    {
        config.Environment.DEV: types.MappingProxyType(
            {
                "analytics_enabled": False,
                "analytics_instances": 1,
                "analytics_storage_size": "1Gi",
                "analytics_resources": _resources("50m", "64Mi", "256Mi"),
            }
        ),
        config.Environment.STAGING: types.MappingProxyType(
            {
                "analytics_enabled": True,
                "analytics_instances": 1,
                "analytics_storage_size": "2Gi",
                "analytics_resources": _resources("100m", "128Mi", "512Mi"),
            }
        ),
        config.Environment.PRODUCTION: types.MappingProxyType(
            {
                "analytics_enabled": True,
                "analytics_instances": 2,
                "analytics_storage_size": "10Gi",
                "analytics_resources": _resources("250m", "256Mi", "1Gi"),
            }
        ),
    }
)


def _selector(ref: DatabaseSecretKeyRef | None) -> effective.SecretKeySelector | None:
    return None if ref is None else effective.SecretKeySelector(name=ref.name, key=ref.key)


def resolve(
    spec: AnalyticsSpec | None,
    environment: config.Environment,
    default_image: str = DEFAULT_POSTGRES_IMAGE,
) -> EffectiveAnalytics:
    """``spec.analytics`` (None when absent) with the preset of ``environment`` filling what is unset."""
    preset = PRESETS[environment]
    spec = spec or AnalyticsSpec()
    database = spec.database or DatabaseSpec()
    managed = database.managed or ManagedDatabase()
    storage = managed.storage or DatabaseStorage()
    external = database.external if database.mode is DatabaseMode.EXTERNAL else None
    chosen: Mapping[str, Mapping[str, Any]] = preset["analytics_resources"]
    resources = (
        effective.EffectiveResources(
            requests=dict(managed.resources.requests or {}), limits=dict(managed.resources.limits or {})
        )
        if managed.resources is not None
        else effective.EffectiveResources(
            requests=dict(chosen.get("requests", {})), limits=dict(chosen.get("limits", {}))
        )
    )
    return EffectiveAnalytics(
        enabled=spec.enabled if spec.enabled is not None else bool(preset["analytics_enabled"]),
        managed=external is None,
        image=managed.image or default_image,
        cnpg_image=managed.image,
        instances=managed.instances if managed.instances is not None else int(preset["analytics_instances"]),
        storage_size=storage.size or str(preset["analytics_storage_size"]),
        storage_class_name=storage.storage_class_name,
        resources=resources,
        url_secret_ref=_selector(external.url_secret_ref) if external else None,
        password_secret_ref=_selector(external.password_secret_ref) if external else None,
        retention_days=spec.retention_days if spec.retention_days is not None else DEFAULT_RETENTION_DAYS,
        erase_on_key_delete=(
            spec.erase_on_key_delete if spec.erase_on_key_delete is not None else DEFAULT_ERASE_ON_KEY_DELETE
        ),
    )
