"""Status of the custom resources, computed from observations: pure functions, clock injected.

Conditions follow KEP-1623: ``lastTransitionTime`` changes only when a condition's
``status`` changes, so recomputing an unchanged state yields an identical status
and no write (no heartbeats).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pydantic

from weather_operator import keys
from weather_operator.api import analytics as analytics_api
from weather_operator.api import apikey, constants, effective, weatherproxy
from weather_operator.render import names

TRUE = "True"
FALSE = "False"
UNKNOWN = "Unknown"

# WeatherProxy condition types.
READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
REDIS_READY = "RedisReady"
MONITORING_CONFIGURED = "MonitoringConfigured"
LOGS_CONFIGURED = "LogsConfigured"
ANALYTICS_READY = "AnalyticsReady"
ERROR_TRACKING_CONFIGURED = "ErrorTrackingConfigured"
TLS_READY = "TLSReady"
# spec.strategy BlueGreen (docs/rollouts.md).
ROLLOUT_PROGRESSING = "RolloutProgressing"
ROLLOUT_ABORTED = "RolloutAborted"
ROLLOUT_ANALYSIS_FAILED = "AnalysisFailed"
ROLLOUT_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
ROLLOUT_ABORT_REQUESTED = "AbortRequested"


@dataclasses.dataclass(frozen=True)
class Observed:
    """A condition without its bookkeeping: what was observed just now."""

    type: str
    status: str
    reason: str
    message: str = ""


def merge_conditions(
    previous: Sequence[Mapping[str, Any]] | None,
    observed: Iterable[Observed],
    generation: int | None,
    now: datetime.datetime,
) -> list[dict[str, Any]]:
    """Full conditions from observations; a transition time is kept while the status holds."""
    before = {str(c.get("type")): c for c in previous or []}
    out: list[dict[str, Any]] = []
    for item in observed:
        old = before.get(item.type)
        if old is not None and old.get("status") == item.status and old.get("lastTransitionTime"):
            transition = str(old["lastTransitionTime"])
        else:
            transition = keys.format_time(now)
        condition: dict[str, Any] = {
            "type": item.type,
            "status": item.status,
            "reason": item.reason,
            "message": item.message,
            "lastTransitionTime": transition,
        }
        if generation is not None:
            condition["observedGeneration"] = generation
        out.append(condition)
    return out


def find(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> Mapping[str, Any] | None:
    for condition in conditions or []:
        if condition.get("type") == type_:
            return condition
    return None


def changed(current: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> bool:
    """Whether writing ``desired`` would change the stored status (only its own fields count)."""
    current = current or {}
    return any(current.get(key) != value for key, value in desired.items())


# --- WeatherProxy -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RedisObservation:
    """Redis as seen by the operator: the managed StatefulSet, or the external URL Secret."""

    managed: bool
    ready: bool
    detail: str


@dataclasses.dataclass(frozen=True)
class MonitoringObservation:
    wanted: bool  # a ServiceMonitor or PrometheusRule is enabled in the spec
    available: bool  # the Prometheus Operator CRDs are installed


@dataclasses.dataclass(frozen=True)
class ProxyObservation:
    """Everything the WeatherProxy status is computed from."""

    name: str
    namespace: str
    generation: int | None
    spec: effective.EffectiveSpec
    deployment: Mapping[str, Any] | None
    redis: RedisObservation
    monitoring: MonitoringObservation
    api_keys: int
    config_hash: str | None
    selector: str
    reconcile_error: str | None = None
    """Why the last reconcile could not apply the children (the API server's refusal), if it failed."""
    analytics: Observed | None = None
    """AnalyticsReady: the usage history's database as read back (``analytics_readiness``)."""
    error_tracking: Observed | None = None
    """ErrorTrackingConfigured: whether the DSN's Secret is there (``error_tracking_from_secret``)."""
    proxy_pods: str | None = None
    """Why the proxy pods are not ready, from the pods themselves (``podstate``); None when not looked at."""
    tls: Observed | None = None
    """TLSReady: the proxies' certificate (``tls_ready``); None when not looked at."""
    logs: Observed | None = None
    """LogsConfigured: the PodLogs of spec.logging.podLogs (``logs_configured``); None when it is off."""
    rollout: RolloutObservation | None = None
    """status.rollout to write (``RolloutObservation``); None: the fleet never had one, nothing written."""


@dataclasses.dataclass(frozen=True)
class RolloutObservation:
    """A blue/green rollout's state (``controller.rollout``), camelCase; ``state`` None clears it."""

    state: Mapping[str, Any] | None


def rollout_conditions(rollout: Mapping[str, Any] | None) -> list[Observed]:
    """RolloutProgressing and RolloutAborted from status.rollout (none without one)."""
    if not rollout or not rollout.get("phase"):
        return []
    phase, message = str(rollout["phase"]), str(rollout.get("message") or "")
    if phase == "Aborted":
        why = rollout.get("reason")
        if why == "AbortRequested":
            aborted = Observed(ROLLOUT_ABORTED, TRUE, "AbortRequested", message)
        elif why == "ProgressDeadlineExceeded":
            aborted = Observed(ROLLOUT_ABORTED, TRUE, "ProgressDeadlineExceeded", message)
        else:
            aborted = Observed(ROLLOUT_ABORTED, TRUE, "AnalysisFailed", message)
        return [Observed(ROLLOUT_PROGRESSING, FALSE, "Aborted", message), aborted]
    if phase == "Progressing":
        progressing = Observed(ROLLOUT_PROGRESSING, TRUE, "Progressing", message)
    elif phase == "Analyzing" and (rollout.get("analysis") or {}).get("passed") is True:
        progressing = Observed(ROLLOUT_PROGRESSING, TRUE, "AwaitingPromotion", message)
    elif phase == "Analyzing":
        progressing = Observed(ROLLOUT_PROGRESSING, TRUE, "Analyzing", message)
    elif phase == "Promoting":
        progressing = Observed(ROLLOUT_PROGRESSING, TRUE, "Promoting", message)
    else:
        progressing = Observed(ROLLOUT_PROGRESSING, FALSE, "Stable", message)
    return [progressing, Observed(ROLLOUT_ABORTED, FALSE, "NotAborted", "no rollout aborted")]


def desired_replicas(spec: effective.EffectiveSpec, deployment: Mapping[str, Any] | None) -> int:
    """Replicas the fleet should run: the HPA's choice when autoscaling, else the spec's."""
    if spec.autoscaling.enabled:
        if deployment is not None and deployment.get("spec", {}).get("replicas") is not None:
            return int(deployment["spec"]["replicas"])
        return spec.autoscaling.min_replicas
    return spec.replicas


def _with_pods(message: str, pods: str | None) -> str:
    """``message``, followed by what the pods say (``podstate.why_not_ready``) when they were read."""
    return f"{message}: {pods}" if pods else message


def _deployment_condition(deployment: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    conditions: Sequence[Mapping[str, Any]] = deployment.get("status", {}).get("conditions") or []
    return find(conditions, type_)


def proxy_conditions(obs: ProxyObservation) -> list[Observed]:
    """Ready, Progressing, Degraded, RedisReady, MonitoringConfigured, from the observations."""
    deployment = obs.deployment
    want = desired_replicas(obs.spec, deployment)
    dstatus: Mapping[str, Any] = (deployment or {}).get("status") or {}
    ready = int(dstatus.get("readyReplicas") or 0)
    updated = int(dstatus.get("updatedReplicas") or 0)
    observed_generation = dstatus.get("observedGeneration")
    generation = (deployment or {}).get("metadata", {}).get("generation")

    out: list[Observed] = []
    if deployment is None:
        out.append(Observed(READY, FALSE, "DeploymentNotFound", "the proxy Deployment does not exist yet"))
    elif ready >= want and want > 0:
        out.append(Observed(READY, TRUE, "AllReplicasReady", f"{ready}/{want} replicas ready"))
    else:
        replicas = _with_pods(f"{ready}/{want} replicas ready", obs.proxy_pods)
        out.append(Observed(READY, FALSE, "ReplicasNotReady", replicas))

    rolling = deployment is None or (
        (generation is not None and observed_generation is not None and observed_generation < generation)
        or updated < want
    )
    progress = _deployment_condition(deployment or {}, "Progressing")
    if progress is not None and progress.get("reason") == "ProgressDeadlineExceeded":
        out.append(Observed(PROGRESSING, FALSE, "ProgressDeadlineExceeded", str(progress.get("message", ""))))
    elif rolling:
        rollout = _with_pods(f"{updated}/{want} replicas updated", obs.proxy_pods)
        out.append(Observed(PROGRESSING, TRUE, "RollingOut", rollout))
    else:
        out.append(Observed(PROGRESSING, FALSE, "RolloutComplete", f"{updated}/{want} replicas updated"))

    failure = _deployment_condition(deployment or {}, "ReplicaFailure")
    if obs.reconcile_error is not None:
        out.append(Observed(DEGRADED, TRUE, "ReconcileFailed", obs.reconcile_error))
    elif failure is not None and failure.get("status") == TRUE:
        out.append(Observed(DEGRADED, TRUE, "ReplicaFailure", str(failure.get("message", ""))))
    elif progress is not None and progress.get("reason") == "ProgressDeadlineExceeded":
        out.append(Observed(DEGRADED, TRUE, "ProgressDeadlineExceeded", str(progress.get("message", ""))))
    elif deployment is not None and not rolling and 0 < ready < want:
        unavailable = _with_pods(f"{ready}/{want} replicas ready", obs.proxy_pods)
        out.append(Observed(DEGRADED, TRUE, "ReplicasUnavailable", unavailable))
    elif not obs.redis.ready:
        out.append(Observed(DEGRADED, TRUE, "RedisUnavailable", obs.redis.detail))
    else:
        out.append(Observed(DEGRADED, FALSE, "AsExpected", ""))

    if obs.redis.managed:
        reason = "StatefulSetReady" if obs.redis.ready else "StatefulSetNotReady"
    else:
        reason = "ExternalSecretFound" if obs.redis.ready else "ExternalSecretNotFound"
    out.append(Observed(REDIS_READY, TRUE if obs.redis.ready else FALSE, reason, obs.redis.detail))

    if not obs.monitoring.wanted:
        out.append(
            Observed(MONITORING_CONFIGURED, FALSE, "Disabled", "serviceMonitor and alerts are disabled")
        )
    elif not obs.monitoring.available:
        out.append(
            Observed(
                MONITORING_CONFIGURED,
                FALSE,
                "CRDsNotInstalled",
                "the Prometheus Operator CRDs (monitoring.coreos.com/v1) are not installed",
            )
        )
    else:
        out.append(
            Observed(MONITORING_CONFIGURED, TRUE, "Configured", "ServiceMonitor/PrometheusRule applied")
        )
    if obs.analytics is not None:
        out.append(obs.analytics)
    if obs.error_tracking is not None:
        out.append(obs.error_tracking)
    if obs.tls is not None:
        out.append(obs.tls)
    if obs.logs is not None:
        out.append(obs.logs)
    if obs.rollout is not None:
        out += rollout_conditions(obs.rollout.state)
    return out


POD_LOGS_CRD_NOT_INSTALLED = "CRDNotInstalled"


def logs_configured(pod_logs: effective.EffectivePodLogs, available: bool) -> Observed | None:
    """LogsConfigured while spec.logging.podLogs is on: applied, or skipped for want of its CRD."""
    if not pod_logs.enabled:
        return None
    if not available:
        return Observed(
            LOGS_CONFIGURED,
            FALSE,
            POD_LOGS_CRD_NOT_INSTALLED,
            "the Grafana PodLogs CRD (monitoring.grafana.com/v1alpha2) is not served",
        )
    return Observed(LOGS_CONFIGURED, TRUE, "Configured", "PodLogs applied")


# Why TLSReady is False (``tls_ready``).
TLS_CERT_MANAGER_MISSING = "CertManagerMissing"
TLS_ISSUER_NOT_FOUND = "IssuerNotFound"
TLS_SECRET_NOT_FOUND = "SecretNotFound"  # noqa: S105  # nosec B105 - a reason
TLS_SECRET_INVALID = "SecretInvalid"  # noqa: S105  # nosec B105 - a reason
TLS_CERTIFICATE_PENDING = "CertificatePending"


def tls_ready(
    spec_tls: effective.EffectiveTls,
    not_after: datetime.datetime | None,
    problem: str | None,
    *,
    namespace: str = "",
    secret: str = "",
) -> Observed:
    """TLSReady: the proxies' certificate and until when it is valid, or what is missing and the fix."""
    if not spec_tls.enabled:
        return Observed(TLS_READY, FALSE, "Disabled", "spec.tls.mode is Off: the proxies serve plain HTTP")
    if problem is None and not_after is not None:
        until = keys.format_time(not_after)
        return Observed(
            TLS_READY, TRUE, "CertificateReady", f"serving a certificate valid until {until} (notAfter)"
        )
    if problem == TLS_CERT_MANAGER_MISSING:
        return Observed(
            TLS_READY,
            FALSE,
            TLS_CERT_MANAGER_MISSING,
            "spec.tls.mode is CertManager but cert-manager's CRDs (cert-manager.io/v1 Certificate) are not "
            "installed: install cert-manager, or set spec.tls.mode to Managed",
        )
    if problem == TLS_ISSUER_NOT_FOUND:
        where = f" in namespace {namespace!r}" if spec_tls.issuer_kind is effective.IssuerKind.ISSUER else ""
        return Observed(
            TLS_READY,
            FALSE,
            TLS_ISSUER_NOT_FOUND,
            f"spec.tls.issuerRef names {spec_tls.issuer_kind.value} {spec_tls.issuer_name!r}, which does not "
            f"exist{where}: create it, or fix spec.tls.issuerRef",
        )
    if problem == TLS_SECRET_NOT_FOUND and spec_tls.mode is effective.TlsMode.CERT_MANAGER:
        return Observed(
            TLS_READY,
            FALSE,
            TLS_CERTIFICATE_PENDING,
            f"waiting for cert-manager to issue Certificate {secret!r} into Secret {secret!r}",
        )
    if problem == TLS_SECRET_NOT_FOUND:
        return Observed(
            TLS_READY,
            FALSE,
            TLS_SECRET_NOT_FOUND,
            f"spec.tls.secretName names Secret {secret!r}, which does not exist: create a kubernetes.io/tls "
            "Secret with tls.crt, tls.key and ca.crt, or fix spec.tls.secretName",
        )
    field = "spec.tls.secretName" if spec_tls.mode is effective.TlsMode.SECRET else "cert-manager's"
    return Observed(
        TLS_READY,
        FALSE,
        TLS_SECRET_INVALID,
        f"Secret {secret!r} ({field}) has no readable PEM certificate in tls.crt or no tls.key: put the "
        "certificate chain in tls.crt and its key in tls.key",
    )


def through_model(model: type[pydantic.BaseModel], status: Mapping[str, Any]) -> dict[str, Any]:
    """``status`` checked against the CRD's status model, as the merge patch to write.

    Only the fields given are written (None clears one); a status the schema would reject
    fails here, in the operator, not as a 422 from the API server.
    """
    return model.model_validate(status).model_dump(mode="json", by_alias=True, exclude_unset=True)


INVALID_SPEC = "InvalidSpec"


def invalid_proxy_status(
    generation: int | None, message: str, previous: Mapping[str, Any] | None, now: datetime.datetime
) -> dict[str, Any]:
    """The status of a WeatherProxy whose spec the models reject: not Ready, Degraded, and why."""
    previous = previous or {}
    observed = [
        Observed(READY, FALSE, INVALID_SPEC, message),
        Observed(DEGRADED, TRUE, INVALID_SPEC, message),
    ]
    return through_model(
        weatherproxy.WeatherProxyStatus,
        {
            "observedGeneration": generation,
            "conditions": merge_conditions(previous.get("conditions"), observed, generation, now),
        },
    )


def proxy_status(
    obs: ProxyObservation, previous: Mapping[str, Any] | None, now: datetime.datetime
) -> dict[str, Any]:
    """The full WeatherProxy status (the fields the operator owns)."""
    previous = previous or {}
    dstatus: Mapping[str, Any] = (obs.deployment or {}).get("status") or {}
    rollout: dict[str, Any] = {}
    if obs.rollout is not None:
        rollout["rollout"] = dict(obs.rollout.state) if obs.rollout.state is not None else None
    return through_model(
        weatherproxy.WeatherProxyStatus,
        {
            **rollout,
            "observedGeneration": obs.generation,
            "replicas": int(dstatus.get("replicas") or 0),
            "readyReplicas": int(dstatus.get("readyReplicas") or 0),
            "selector": obs.selector,
            "apiKeys": obs.api_keys,
            "endpoint": names.endpoint(obs.name, obs.namespace, obs.spec.tls.enabled),
            "configHash": obs.config_hash,
            "conditions": merge_conditions(
                previous.get("conditions"), proxy_conditions(obs), obs.generation, now
            ),
        },
    )


def redis_from_statefulset(
    statefulset: Mapping[str, Any] | None, pods: str | None = None
) -> RedisObservation:
    """RedisReady from the managed StatefulSet; ``pods``: why its pod is not ready (``podstate``)."""
    if statefulset is None:
        return RedisObservation(managed=True, ready=False, detail="the Redis StatefulSet does not exist yet")
    ready = int((statefulset.get("status") or {}).get("readyReplicas") or 0)
    if ready >= 1:
        return RedisObservation(managed=True, ready=True, detail="Redis is ready")
    return RedisObservation(managed=True, ready=False, detail=_with_pods("Redis has no ready replica", pods))


def redis_from_external_secret(
    secret: Mapping[str, Any] | None, secret_name: str, key: str
) -> RedisObservation:
    if secret is None:
        return RedisObservation(managed=False, ready=False, detail=f"Secret {secret_name!r} not found")
    data = secret.get("data") or {}
    if key not in data and key not in (secret.get("stringData") or {}):
        return RedisObservation(
            managed=False, ready=False, detail=f"Secret {secret_name!r} has no key {key!r}"
        )
    return RedisObservation(
        managed=False, ready=True, detail=f"external Redis URL from Secret {secret_name!r}"
    )


def error_tracking_from_secret(
    tracking: effective.EffectiveErrorTracking, secret: Mapping[str, Any] | None
) -> Observed:
    """ErrorTrackingConfigured from the DSN's Secret as read (None: not found), as RedisReady's
    External URL Secret: the pods' SENTRY_DSN is a secretKeyRef, so without it they cannot start."""
    if not tracking.enabled or tracking.dsn_secret_ref is None:
        return Observed(ERROR_TRACKING_CONFIGURED, FALSE, "Disabled", "spec.errorTracking is not set")
    name, key = tracking.dsn_secret_ref.name, tracking.dsn_secret_ref.key
    if secret is None:
        problem = f"Secret {name!r} not found"
    elif key not in (secret.get("data") or {}) and key not in (secret.get("stringData") or {}):
        problem = f"Secret {name!r} has no key {key!r}"
    else:
        return Observed(
            ERROR_TRACKING_CONFIGURED,
            TRUE,
            "SecretFound",
            f"error reports go to the DSN in Secret {name!r}, environment {tracking.environment!r}",
        )
    message = f"{problem}: the proxy pods cannot start without their SENTRY_DSN"
    return Observed(ERROR_TRACKING_CONFIGURED, FALSE, "SecretNotFound", message)


def analytics_readiness(
    proxy: str,
    analytics: analytics_api.EffectiveAnalytics,
    cnpg: bool,
    database: Mapping[str, Any] | None,
    pods: str | None = None,
) -> Observed:
    """AnalyticsReady from the managed database as read back (its StatefulSet, or CloudNativePG's Cluster).

    ``database``: the live object of the form ``render.postgres.render_database`` chose (None:
    not there yet). An External database is not the operator's to see: Unknown, the proxies'
    readiness tells. ``pods``: why the StatefulSet's pod is not ready (``podstate``).
    """
    if not analytics.enabled:
        return Observed(ANALYTICS_READY, TRUE, "Disabled", "spec.analytics is off: no usage history")
    if not analytics.managed:
        return Observed(
            ANALYTICS_READY,
            UNKNOWN,
            "External",
            "the database is external; the proxies' /health/ready shows whether it answers",
        )
    found = (database or {}).get("status") or {}
    if cnpg:
        name = names.cnpg_cluster_name(proxy)
        if database is None:
            return Observed(
                ANALYTICS_READY, FALSE, "DatabaseCreating", f"CloudNativePG Cluster {name} does not exist yet"
            )
        ready, wanted = int(found.get("readyInstances") or 0), int(analytics.instances)
        phase = str(found.get("phase") or "no phase yet")
        if ready >= 1:
            detail = f"{ready}/{wanted} instances ready ({phase})"
            return Observed(ANALYTICS_READY, TRUE, "DatabaseReady", f"CloudNativePG Cluster {name}: {detail}")
        return Observed(ANALYTICS_READY, FALSE, "DatabaseNotReady", f"CloudNativePG Cluster {name}: {phase}")
    name = names.postgres_name(proxy)
    if database is None:
        return Observed(ANALYTICS_READY, FALSE, "DatabaseCreating", f"StatefulSet {name} does not exist yet")
    if int(found.get("readyReplicas") or 0) >= 1:
        return Observed(ANALYTICS_READY, TRUE, "DatabaseReady", f"StatefulSet {name}: PostgreSQL ready")
    return Observed(
        ANALYTICS_READY,
        FALSE,
        "DatabaseNotReady",
        _with_pods(f"StatefulSet {name}: PostgreSQL not ready yet", pods),
    )


def rolled_out(deployment: Mapping[str, Any] | None, config_hash: str) -> bool:
    """Whether every replica of the Deployment runs the pod template of ``config_hash`` and is available."""
    if deployment is None:
        return False
    template = deployment.get("spec", {}).get("template", {}).get("metadata", {})
    if (template.get("annotations") or {}).get(constants.CONFIG_HASH_ANNOTATION) != config_hash:
        return False
    st = deployment.get("status") or {}
    if int(st.get("observedGeneration") or 0) < int(deployment.get("metadata", {}).get("generation") or 0):
        return False
    updated = int(st.get("updatedReplicas") or 0)
    return (
        updated >= 1
        and int(st.get("replicas") or 0) == updated
        and int(st.get("availableReplicas") or 0) >= updated
    )


def logs_outdated(current: Mapping[str, Any], available: bool) -> bool:
    """Whether a fleet status's LogsConfigured condition contradicts the PodLogs CRD's presence now."""
    condition = find(current.get("conditions"), LOGS_CONFIGURED)
    reason = condition.get("reason") if condition else None
    return (available and reason == POD_LOGS_CRD_NOT_INSTALLED) or (not available and reason == "Configured")


def monitoring_outdated(current: Mapping[str, Any], available: bool) -> bool:
    """Whether a fleet status's MonitoringConfigured condition contradicts the CRDs' presence now."""
    condition = find(current.get("conditions"), MONITORING_CONFIGURED)
    reason = condition.get("reason") if condition else None
    return (available and reason == "CRDsNotInstalled") or (not available and reason == "Configured")


# --- ApiKey ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class KeyObservation:
    """What the ApiKey handler found; ``problem`` is a (reason, message) when the key is unusable."""

    generation: int | None
    secret_name: str
    key_prefix: str | None
    expires_at: datetime.datetime | None
    disabled: bool
    proxy_found: bool
    problem: tuple[str, str] | None = None
    rotation: int | None = None
    rotated_at: datetime.datetime | None = None
    previous_key_prefix: str | None = None
    previous_key_expires_at: datetime.datetime | None = None


def apikey_ready(obs: KeyObservation, now: datetime.datetime) -> Observed:
    if obs.problem is not None:
        return Observed(READY, FALSE, obs.problem[0], obs.problem[1])
    if obs.expires_at is not None and obs.expires_at <= now:
        return Observed(READY, FALSE, "Expired", f"the key expired at {keys.format_time(obs.expires_at)}")
    if obs.disabled:
        return Observed(READY, FALSE, "Disabled", "the key is disabled")
    if not obs.proxy_found:
        return Observed(READY, FALSE, "ProxyNotFound", "the WeatherProxy named in proxyRef does not exist")
    return Observed(READY, TRUE, "KeyIssued", "the key is served by the fleet")


def apikey_status(
    obs: KeyObservation, previous: Mapping[str, Any] | None, now: datetime.datetime
) -> dict[str, Any]:
    """The ApiKey status (only the fields the operator owns; None values clear a field)."""
    previous = previous or {}
    return through_model(
        apikey.ApiKeyStatus,
        {
            "observedGeneration": obs.generation,
            "secretName": obs.secret_name,
            "keyPrefix": obs.key_prefix,
            "expiresAt": keys.format_time(obs.expires_at) if obs.expires_at else None,
            "expired": obs.expires_at is not None and obs.expires_at <= now,
            "rotation": obs.rotation,
            "rotatedAt": keys.format_time(obs.rotated_at) if obs.rotated_at else previous.get("rotatedAt"),
            "previousKeyPrefix": obs.previous_key_prefix,
            "previousKeyExpiresAt": (
                keys.format_time(obs.previous_key_expires_at) if obs.previous_key_expires_at else None
            ),
            "conditions": merge_conditions(
                previous.get("conditions"), [apikey_ready(obs, now)], obs.generation, now
            ),
        },
    )


RECONCILE_FAILED = "ReconcileFailed"


def failed_apikey_status(
    generation: int | None, message: str, previous: Mapping[str, Any] | None, now: datetime.datetime
) -> dict[str, Any]:
    """The status of an ApiKey whose reconcile the API server refused: not Ready, and its message."""
    return _apikey_not_ready(generation, RECONCILE_FAILED, message, previous, now)


def invalid_apikey_status(
    generation: int | None, message: str, previous: Mapping[str, Any] | None, now: datetime.datetime
) -> dict[str, Any]:
    """The status of an ApiKey whose spec the models reject: not Ready, and why."""
    return _apikey_not_ready(generation, INVALID_SPEC, message, previous, now)


def _apikey_not_ready(
    generation: int | None,
    reason: str,
    message: str,
    previous: Mapping[str, Any] | None,
    now: datetime.datetime,
) -> dict[str, Any]:
    previous = previous or {}
    observed = [Observed(READY, FALSE, reason, message)]
    return through_model(
        apikey.ApiKeyStatus,
        {
            "observedGeneration": generation,
            "conditions": merge_conditions(previous.get("conditions"), observed, generation, now),
        },
    )
