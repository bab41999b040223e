"""The Argo CD health checks of WeatherProxy and ApiKey, run by a real Lua interpreter."""

from __future__ import annotations

import copy
import datetime
import pathlib
from collections.abc import Callable
from typing import Any

import pytest

from tests.unit.delivery import lua, support

HEALTH = support.MANIFESTS / "argocd" / "health"
WEATHERPROXY = HEALTH / "weatherproxy.lua"
APIKEY = HEALTH / "apikey.lua"


Run = Callable[[pathlib.Path, dict[str, Any]], tuple[str, str]]


@pytest.fixture(scope="module", params=["lua5.4", "gopher-lua"])
def run_health(request: pytest.FixtureRequest) -> Run:
    """The script's (status, message) for an object, under lua5.4 and under gopher-lua (Argo CD's)."""
    if request.param == "lua5.4":
        binary = support.require_tool("lua5.4")
        return lambda script, obj: lua.run_health(binary, script, obj)
    runner = lua.luahealth_binary()
    return lambda script, obj: lua.run_health_gopher(runner, script, obj)


def ready(status: str, reason: str, message: str = "", generation: int | None = 3) -> dict[str, Any]:
    return {
        "type": "Ready",
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": "2026-11-26T10:00:00Z",
    }


def resource(kind: str, status: dict[str, Any] | None, generation: int | None = 3) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "paris", "namespace": "weather", "generation": generation}
    return {
        "apiVersion": "weatherproxy.dev/v1alpha1",
        "kind": kind,
        "metadata": metadata,
        "spec": {},
        "status": status,
    }


def condition(type_: str, status: str, reason: str, message: str = "") -> dict[str, Any]:
    return {**ready(status, reason, message), "type": type_}


ROLLING = condition("Progressing", "True", "RollingOut", "1/2 replicas updated")
ROLLED_OUT = condition("Progressing", "False", "RolloutComplete", "2/2 replicas updated")
NOT_DEGRADED = condition("Degraded", "False", "AsExpected")

WEATHERPROXY_CASES = [
    ("no status yet", None, 1, "Progressing", "reconcile"),
    ("empty status", {}, 1, "Progressing", "generation 1"),
    (
        "status of an older generation",
        {"observedGeneration": 2, "conditions": [ready("True", "AllReplicasReady")]},
        3,
        "Progressing",
        "generation 3",
    ),
    ("current but no conditions", {"observedGeneration": 3}, 3, "Progressing", "Ready condition"),
    (
        "only other conditions",
        {
            "observedGeneration": 3,
            "conditions": [condition("MonitoringConfigured", "False", "CRDsNotInstalled")],
        },
        3,
        "Progressing",
        "Ready condition",
    ),
    (
        "ready",
        {
            "observedGeneration": 3,
            "readyReplicas": 2,
            "conditions": [ready("True", "AllReplicasReady", "2/2 replicas ready"), ROLLED_OUT, NOT_DEGRADED],
        },
        3,
        "Healthy",
        "AllReplicasReady: 2/2",
    ),
    (
        "ready, monitoring not configured",
        {
            "observedGeneration": 3,
            "conditions": [
                condition("MonitoringConfigured", "False", "CRDsNotInstalled"),
                ready("True", "AllReplicasReady"),
                NOT_DEGRADED,
            ],
        },
        3,
        "Healthy",
        "AllReplicasReady",
    ),
    (
        "ready but the condition is stale",
        {"observedGeneration": 3, "conditions": [ready("True", "AllReplicasReady", generation=2)]},
        3,
        "Progressing",
        "generation 2",
    ),
    (
        "deployment not created yet",
        {"observedGeneration": 3, "conditions": [ready("False", "DeploymentNotFound"), ROLLING]},
        3,
        "Progressing",
        "DeploymentNotFound",
    ),
    (
        "replicas starting",
        {
            "observedGeneration": 3,
            "conditions": [ready("False", "ReplicasNotReady", "1/2 replicas ready"), ROLLING],
        },
        3,
        "Progressing",
        "1/2",
    ),
    (
        "redis down while rolling out",
        {
            "observedGeneration": 3,
            "conditions": [
                ready("True", "AllReplicasReady"),
                ROLLING,
                condition("Degraded", "True", "RedisUnavailable", "StatefulSet not ready"),
            ],
        },
        3,
        "Progressing",
        "RedisUnavailable",
    ),
    (
        "redis down after the rollout",
        {
            "observedGeneration": 3,
            "conditions": [
                ready("True", "AllReplicasReady"),
                ROLLED_OUT,
                condition("Degraded", "True", "RedisUnavailable", "StatefulSet not ready"),
            ],
        },
        3,
        "Degraded",
        "RedisUnavailable: StatefulSet not ready",
    ),
    (
        "replicas lost after the rollout",
        {
            "observedGeneration": 3,
            "conditions": [
                ready("False", "ReplicasNotReady", "1/2 replicas ready"),
                ROLLED_OUT,
                condition("Degraded", "True", "ReplicasUnavailable", "1/2 replicas ready"),
            ],
        },
        3,
        "Degraded",
        "ReplicasUnavailable",
    ),
    (
        "rollout stuck",
        {
            "observedGeneration": 3,
            "conditions": [
                ready("False", "ReplicasNotReady"),
                condition("Progressing", "False", "ProgressDeadlineExceeded"),
                condition("Degraded", "True", "ProgressDeadlineExceeded", "exceeded its progress deadline"),
            ],
        },
        3,
        "Degraded",
        "progress deadline",
    ),
    (
        "pods cannot be created, even while rolling",
        {
            "observedGeneration": 3,
            "conditions": [
                ready("False", "ReplicasNotReady"),
                ROLLING,
                condition("Degraded", "True", "ReplicaFailure", "forbidden: violates PodSecurity"),
            ],
        },
        3,
        "Degraded",
        "PodSecurity",
    ),
    (
        "the API server refuses a child, even while rolling",
        {
            "observedGeneration": 3,
            "conditions": [
                ready("True", "AllReplicasReady"),
                ROLLING,
                condition("Degraded", "True", "ReconcileFailed", "403 Forbidden: exceeded quota"),
            ],
        },
        3,
        "Degraded",
        "exceeded quota",
    ),
    (
        "invalid spec",
        {
            "observedGeneration": 3,
            "conditions": [ready("False", "InvalidSpec", "spec.redis: needs urlSecretRef")],
        },
        3,
        "Degraded",
        "urlSecretRef",
    ),
    (
        "reconcile failed",
        {"observedGeneration": 3, "conditions": [ready("False", "ReconcileFailed", "apply failed")]},
        3,
        "Degraded",
        "ReconcileFailed",
    ),
    (
        "invalid spec of a generation the operator never reconciled",
        {
            "observedGeneration": 2,
            "conditions": [
                ready(
                    "False",
                    "InvalidSpec",
                    "spec.disruption.maxUnavailable must be an integer or a percentage like 50%",
                ),
                ROLLED_OUT,
            ],
        },
        3,
        "Degraded",
        "InvalidSpec: spec.disruption.maxUnavailable",
    ),
    (
        "an invalid spec since fixed, not yet reconciled",
        {"observedGeneration": 2, "conditions": [ready("False", "InvalidSpec", "bad", generation=2)]},
        3,
        "Progressing",
        "generation 3",
    ),
    (
        "degraded by an invalid spec, even while rolling",
        {
            "observedGeneration": 2,
            "conditions": [
                ready("True", "AllReplicasReady", generation=2),
                ROLLING,
                condition("Degraded", "True", "InvalidSpec", "spec.disruption.maxUnavailable: half"),
            ],
        },
        3,
        "Degraded",
        "InvalidSpec: spec.disruption",
    ),
    (
        "reconcile failed for a generation not yet observed",
        {
            "observedGeneration": 2,
            "conditions": [
                ready("True", "AllReplicasReady", generation=2),
                condition("Degraded", "True", "ReconcileFailed", "422 Unprocessable Entity: Service"),
            ],
        },
        3,
        "Degraded",
        "ReconcileFailed: 422",
    ),
    (
        "a condition with a null message",
        {"observedGeneration": 3, "conditions": [{**ready("True", "AllReplicasReady"), "message": None}]},
        3,
        "Healthy",
        "AllReplicasReady",
    ),
    (
        "unknown",
        {"observedGeneration": 3, "conditions": [ready("Unknown", "Reconciling")]},
        3,
        "Progressing",
        "Reconciling",
    ),
    (
        "no generation in metadata",
        {"observedGeneration": 1, "conditions": [ready("True", "AllReplicasReady", generation=1)]},
        None,
        "Healthy",
        "AllReplicasReady",
    ),
    (
        "non-ASCII message",
        {
            "observedGeneration": 3,
            "conditions": [ready("False", "InvalidSpec", "warmCities: Zürich is too long")],
        },
        3,
        "Degraded",
        "Zürich",
    ),
]

APIKEY_CASES = [
    ("no status yet", None, 1, "Progressing", "reconcile"),
    ("status without generation or conditions", {"secretName": "k"}, 1, "Progressing", "generation 1"),
    (
        "older generation",
        {"observedGeneration": 1, "conditions": [ready("True", "KeyIssued")]},
        2,
        "Progressing",
        "generation 2",
    ),
    (
        "ready",
        {
            "observedGeneration": 3,
            "keyPrefix": "wpk_3fa9",
            "conditions": [ready("True", "KeyIssued", "hash published to paris")],
        },
        3,
        "Healthy",
        "KeyIssued",
    ),
    (
        "generation from the condition only",
        {"conditions": [ready("True", "KeyIssued")]},
        3,
        "Healthy",
        "KeyIssued",
    ),
    (
        "stale condition",
        {"observedGeneration": 3, "conditions": [ready("True", "KeyIssued", generation=1)]},
        3,
        "Progressing",
        "generation 1",
    ),
    (
        "waiting for the proxy",
        {"observedGeneration": 3, "conditions": [ready("False", "ProxyNotReady")]},
        3,
        "Progressing",
        "ProxyNotReady",
    ),
    (
        "unknown",
        {"observedGeneration": 3, "conditions": [ready("Unknown", "Pending")]},
        3,
        "Progressing",
        "Pending",
    ),
    ("current, no conditions", {"observedGeneration": 3}, 3, "Progressing", "Ready condition"),
    (
        "invalid spec never reconciled",
        {"observedGeneration": 2, "conditions": [ready("False", "InvalidSpec", "spec.scopes: repeated")]},
        3,
        "Degraded",
        "InvalidSpec: spec.scopes",
    ),
    (
        "the fleet is missing for a generation not yet observed",
        {"observedGeneration": 2, "conditions": [ready("False", "ProxyNotFound", "no WeatherProxy 'x'")]},
        3,
        "Degraded",
        "ProxyNotFound",
    ),
    (
        "waiting for the proxy, older generation",
        {"observedGeneration": 2, "conditions": [ready("False", "ProxyNotReady", generation=3)]},
        3,
        "Progressing",
        "generation 3",
    ),
    (
        "null message",
        {"observedGeneration": 3, "conditions": [{**ready("True", "KeyIssued"), "message": None}]},
        3,
        "Healthy",
        "KeyIssued",
    ),
]
APIKEY_TERMINAL = ["Expired", "Disabled", "ProxyNotFound", "SecretNotFound", "InvalidSpec", "ReconcileFailed"]


@pytest.mark.parametrize(
    ("case", "status", "generation", "expected", "needle"),
    WEATHERPROXY_CASES,
    ids=[c[0] for c in WEATHERPROXY_CASES],
)
def test_weatherproxy_health(
    run_health: Run,
    case: str,
    status: dict[str, Any] | None,
    generation: int | None,
    expected: str,
    needle: str,
) -> None:
    health, message = run_health(WEATHERPROXY, resource("WeatherProxy", status, generation))
    assert health == expected, message
    assert needle in message


@pytest.mark.parametrize(
    ("case", "status", "generation", "expected", "needle"), APIKEY_CASES, ids=[c[0] for c in APIKEY_CASES]
)
def test_apikey_health(
    run_health: Run,
    case: str,
    status: dict[str, Any] | None,
    generation: int | None,
    expected: str,
    needle: str,
) -> None:
    health, message = run_health(APIKEY, resource("ApiKey", status, generation))
    assert health == expected, message
    assert needle in message


@pytest.mark.parametrize("reason", APIKEY_TERMINAL)
def test_apikey_degraded_reasons(run_health: Run, reason: str) -> None:
    status = {"observedGeneration": 3, "conditions": [ready("False", reason, "needs a person")]}
    health, message = run_health(APIKEY, resource("ApiKey", status))
    assert (health, message) == ("Degraded", f"{reason}: needs a person")


@pytest.mark.parametrize("env", support.ENVIRONMENTS)
def test_freshly_applied_samples_are_progressing(run_health: Run, env: str) -> None:
    objects = support.kustomize_build(support.MANIFESTS / "overlays" / env)
    for obj in objects:
        script = {"WeatherProxy": WEATHERPROXY, "ApiKey": APIKEY}.get(obj["kind"])
        if script is not None:
            created = copy.deepcopy(obj)
            created["metadata"]["generation"] = 1
            assert run_health(script, created)[0] == "Progressing"


@pytest.mark.parametrize("script", [WEATHERPROXY, APIKEY], ids=lambda p: p.name)
def test_scripts_use_only_lua_51(script: pathlib.Path) -> None:
    assert lua.lua_51_violations(script.read_text()) == []


def test_the_lua_51_check_catches_newer_syntax() -> None:
    newer = "local a = 7 // 2\n::top::\ngoto top\nlocal b = 1 << 2\nlocal c <const> = 1\n"
    assert set(lua.lua_51_violations(newer)) == {
        "integer division //",
        "goto",
        "bitwise operators",
        "attribs <const>/<close>",
    }
    assert lua.lua_51_violations('-- a // comment\nlocal s = "x // y"\nif a ~= b then end\n') == []


def test_lua_literal_escapes() -> None:
    assert lua.to_lua({"a": [1, True, None], "b": 'q"\\'}) == '{["a"] = {1, true, nil}, ["b"] = "q\\"\\\\"}'
    assert lua.lua_string("é") == '"\\195\\169"'
    with pytest.raises(TypeError):
        lua.to_lua(object())


APIKEY_OBSERVATIONS: dict[str, tuple[dict[str, Any], str]] = {
    # what the operator observed -> Argo CD health of the ApiKey
    "served": ({}, "Healthy"),
    "expired": ({"expires_at": datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)}, "Degraded"),
    "disabled": ({"disabled": True}, "Degraded"),
    "proxy missing": ({"proxy_found": False}, "Degraded"),
    "secret missing": ({"problem": ("SecretNotFound", "Secret 'x' with key 'apiKey' not found")}, "Degraded"),
}


@pytest.mark.parametrize("case", sorted(APIKEY_OBSERVATIONS))
def test_apikey_health_of_the_conditions_the_operator_writes(run_health: Run, case: str) -> None:
    status_module = pytest.importorskip("weather_operator.status")
    changes, expected = APIKEY_OBSERVATIONS[case]
    observation = status_module.KeyObservation(
        **{
            "generation": 3,
            "secret_name": "k",
            "key_prefix": "wpk_1234",
            "expires_at": None,
            "disabled": False,
            "proxy_found": True,
            **changes,
        }
    )
    observed = status_module.apikey_ready(observation, datetime.datetime(2026, 11, 26, tzinfo=datetime.UTC))
    written = {**ready(observed.status, observed.reason, observed.message), "type": observed.type}
    health, message = run_health(
        APIKEY, resource("ApiKey", {"observedGeneration": 3, "conditions": [written]})
    )
    assert health == expected, message


def test_the_gopher_lua_runner_is_argo_cds_vm(tmp_path: pathlib.Path) -> None:
    """No string library, an unknown status read as Unknown, numbers and nulls as Argo CD converts them."""
    runner = lua.luahealth_binary()
    uses_string = tmp_path / "string.lua"
    uses_string.write_text('return {status = "Healthy", message = string.format("%d", 1)}\n')
    with pytest.raises(RuntimeError, match="string"):
        lua.run_health_gopher(runner, uses_string, {})
    lua54 = support.require_tool("lua5.4")
    assert lua.run_health(lua54, uses_string, {}) == ("Healthy", "1")

    invalid = tmp_path / "invalid.lua"
    invalid.write_text('return {status = "Fine", message = "x"}\n')
    assert lua.run_health_gopher(runner, invalid, {}) == ("Unknown", "Lua returned an invalid health status")

    shapes = tmp_path / "shapes.lua"
    shapes.write_text(
        "local n = 0\nfor _ in ipairs(obj.items) do n = n + 1 end\n"
        'return {status = "Healthy", message = tostring(obj.spec.replicas + 0.5) .. " " .. tostring(n)'
        ' .. " " .. tostring(obj.spec.gone == nil)}\n'
    )
    obj = {"spec": {"replicas": 2, "gone": None}, "items": ["a", None, "b"]}
    # JSON null is no entry (a null in a list is skipped), integers are Lua numbers.
    assert lua.run_health_gopher(runner, shapes, obj) == ("Healthy", "2.5 2 true")


FAILURE_STATUSES = [
    # (status.py function, kind of the resource, a previous status) -> always Degraded
    ("invalid_proxy_status", "WeatherProxy", {"observedGeneration": 2, "conditions": [ROLLING]}),
    ("invalid_apikey_status", "ApiKey", {"observedGeneration": 2}),
    ("failed_apikey_status", "ApiKey", None),
]


@pytest.mark.parametrize(
    ("writer", "kind", "previous"), FAILURE_STATUSES, ids=[f[0] for f in FAILURE_STATUSES]
)
def test_the_failure_statuses_the_operator_writes_are_degraded(
    run_health: Run, writer: str, kind: str, previous: dict[str, Any] | None
) -> None:
    status_module = pytest.importorskip("weather_operator.status")
    if not hasattr(status_module, writer):
        pytest.skip(f"weather_operator.status has no {writer} yet")
    message = "spec.disruption.maxUnavailable must be an integer or a percentage like 50%"
    written = getattr(status_module, writer)(
        3, message, previous, datetime.datetime(2026, 11, 26, tzinfo=datetime.UTC)
    )
    # The status merge patch as the API server stores it: the fields written over the previous ones.
    stored = {**(previous or {}), **{k: v for k, v in written.items() if v is not None}}
    health, shown = run_health(WEATHERPROXY if kind == "WeatherProxy" else APIKEY, resource(kind, stored))
    assert health == "Degraded", shown
    assert message in shown
