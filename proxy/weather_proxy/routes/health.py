"""Liveness, readiness (JSON detail, 503 only when the pod cannot serve) and Prometheus metrics."""

from __future__ import annotations

from typing import Any

import orjson
import prometheus_client
from fastapi import APIRouter
from fastapi.responses import Response

from weather_proxy import contract
from weather_proxy import runtime as runtime_mod
from weather_proxy.routes import deps, schemas

router = APIRouter(tags=["operations"])

OK, DEGRADED, UNAVAILABLE = "ok", "degraded", "unavailable"


def readiness(rt: runtime_mod.Runtime) -> dict[str, Any]:
    """The readiness document; see docs/contracts.md, HTTP API, and the operator's probe."""
    parts = rt.parts
    files = parts.reloader.files
    config_file = files.get("config")
    keys_file = files.get("keys")
    config_check: dict[str, Any] = (
        config_file.state.as_json()
        if config_file
        else {"ok": True, "path": None, "source": "built-in defaults"}
    )
    auth = rt.config.auth
    keys_check: dict[str, Any] = keys_file.state.as_json() if keys_file else {"ok": True, "path": None}
    keys_check.update({"required": auth.required, "count": len(rt.keyring)})
    if parts.key_watch is not None and parts.key_sources is not None:
        # Degraded while a Secret is not watched (revocation falls back to the kubelet's file
        # projection) or its content was refused (the last good keys stay in force).
        watch = parts.key_watch.as_json()
        sources = parts.key_sources.as_json()
        for secret in watch["secrets"]:
            secret["keys"] = sources.get(secret["name"])
        keys_check["watch"] = watch
        healthy = all(s["connected"] and s["contentError"] is None for s in watch["secrets"])
        keys_check["ok"] = bool(keys_check["ok"]) and healthy
    link = parts.link
    redis_check: dict[str, Any] = {
        "configured": link.configured,
        "up": link.up,
        "error": link.last_error if link.configured and not link.up else None,
    }
    breaker_state = parts.breaker.state
    upstream_check: dict[str, Any] = {"breaker": breaker_state, "budget": parts.budget.as_json()}
    # The usage history never fails readiness (the weather does not need it): down, it degrades.
    analytics_check = rt.history.as_json() if rt.history is not None else None
    tls_check = _tls_check(rt) if rt.config.listen.tls is not None else None
    status = OK
    if tls_check is not None and not tls_check["ok"]:
        status = DEGRADED
    if not config_check["ok"] or not keys_check["ok"] or breaker_state != "closed":
        status = DEGRADED
    if redis_check["configured"] and not redis_check["up"]:
        status = DEGRADED
    if analytics_check is not None and not analytics_check["up"]:
        status = DEGRADED
    if not rt.started or rt.shutting_down or (auth.required and not rt.keys_loaded):
        status = UNAVAILABLE
    checks = {
        "config": config_check,
        "keys": keys_check,
        "redis": redis_check,
        "upstream": upstream_check,
    }
    if analytics_check is not None:
        checks["analytics"] = analytics_check
    if tls_check is not None:
        checks["tls"] = tls_check
    return {"status": status, "checks": checks}


def _tls_check(rt: runtime_mod.Runtime) -> dict[str, Any]:
    """The certificate served and its last reload (a failed one degrades: the previous stays served)."""
    from weather_proxy.http import tls

    leaf = tls.SERVING.leaf
    watched = [
        rt.parts.reloader.files[label] for label in tls.WATCH_LABELS if label in rt.parts.reloader.files
    ]
    errors = [w.state.error for w in watched if not w.state.ok and w.state.error]
    return {
        "ok": not errors,
        "notAfter": leaf.not_after.isoformat() if leaf else None,
        "sha256": leaf.sha256 if leaf else None,
        "reload": "in process" if tls.SERVING.reloadable else "at restart",
        "error": errors[0] if errors else None,
    }


@router.get(contract.LIVENESS_PATH, summary="Liveness: the process is up", response_class=Response)
async def live() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


@router.get(
    contract.READINESS_PATH,
    summary="Readiness with the state of config, keys, Redis and the upstream breaker",
    description="503 only when the pod cannot serve at all (not started, shutting down, or auth "
    "required with no keys file loaded). Redis down or an open breaker degrade, they do not fail.",
    response_class=Response,
    responses={
        200: {"model": schemas.ReadyOut, "description": "Serving (ok or degraded)."},
        503: {"model": schemas.ReadyOut, "description": "Cannot serve."},
    },
)
async def ready(rt: deps.RuntimeDep) -> Response:
    doc = readiness(rt)
    return Response(
        orjson.dumps(doc),
        status_code=503 if doc["status"] == UNAVAILABLE else 200,
        media_type="application/json",
    )


@router.get(contract.METRICS_PATH, summary="Prometheus metrics", response_class=Response)
async def metrics(rt: deps.RuntimeDep) -> Response:
    return Response(rt.metrics.render(), media_type=prometheus_client.CONTENT_TYPE_LATEST)
