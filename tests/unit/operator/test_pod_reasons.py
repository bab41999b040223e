"""Why a child is not ready, in the status: the pods' words (``podstate``) and the conditions that carry them.

The pods are in ``pods/``, written field for field as the kubelet and the scheduler write them
(``kubectl get pod -o yaml``, managedFields left out): an image that cannot be pulled, a crash
loop, an unschedulable pod, a Secret a container needs that is missing next to a pod that is
ready. ``e2e/test_fleet.py`` runs the same function on the pods of a real kubelet that cannot
pull an image.
"""

from __future__ import annotations

import copy
import datetime
import pathlib
from typing import Any

import pytest
import yaml

from weather_operator import podstate, status
from weather_operator.api import analytics, resolve, weatherproxy
from weather_proxy import config

PODS = pathlib.Path(__file__).parent / "pods"
NOW = datetime.datetime(2026, 12, 7, 22, 0, tzinfo=datetime.UTC)


def recorded(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((PODS / f"{name}.yaml").read_text()) if doc]


def test_an_image_that_cannot_be_pulled_is_named_with_its_reason() -> None:
    assert podstate.why_not_ready(recorded("image-pull-backoff")) == (
        "pod weather-redis-0 container redis is waiting: ImagePullBackOff"
        " (image localhost/wpf/redis:7.0-bookworm)"
    )


def test_the_image_is_the_one_the_pod_spec_names() -> None:
    (pod,) = recorded("image-pull-backoff")
    pod["status"]["containerStatuses"][0]["image"] = "docker.io/library/redis:7.0"  # CRI's normalised form
    assert "(image localhost/wpf/redis:7.0-bookworm)" in str(podstate.why_not_ready([pod]))


def test_a_crash_loop_gives_the_last_termination_and_the_restarts() -> None:
    assert podstate.why_not_ready(recorded("crash-loop")) == (
        "pod paris-6d9f7c8b5-x2x7q container proxy is waiting: CrashLoopBackOff"
        " (image ghcr.io/weather-proxy/proxy:0.1.0), last terminated: Error, exit code 2, 4 restarts"
    )


def test_an_unschedulable_pod_gives_the_schedulers_message() -> None:
    assert podstate.why_not_ready(recorded("unschedulable")) == (
        "pod paris-postgres-0 is not scheduled: 0/1 nodes are available: 1 Insufficient memory."
        " preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
    )


def test_a_missing_secret_is_named_and_the_ready_pod_is_left_out() -> None:
    assert podstate.why_not_ready(recorded("config-error-and-ready")) == (
        "pod paris-7c5d9f6b4-abcde container proxy is waiting: CreateContainerConfigError:"
        ' secret "paris-sentry" not found (image ghcr.io/weather-proxy/proxy:0.1.0)'
    )


def test_the_most_telling_pod_comes_first_and_the_others_are_counted() -> None:
    pulling = copy.deepcopy(recorded("image-pull-backoff")[0])
    pulling["metadata"]["name"] = "a-first-by-name"
    pulling["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "ErrImagePull"}}
    pods = [*recorded("unschedulable"), *recorded("crash-loop"), pulling]
    said = podstate.why_not_ready(pods)
    assert said is not None
    assert said.startswith(
        "pod a-first-by-name container redis is waiting: ErrImagePull (image localhost/wpf/"
    )
    assert said.endswith("(and 2 more pods in trouble)")


def test_a_pod_on_its_way_up_is_no_trouble() -> None:
    (pod,) = recorded("image-pull-backoff")
    container = pod["status"]["containerStatuses"][0]
    for state in (
        {"waiting": {"reason": "ContainerCreating"}},
        {"running": {"startedAt": "2026-12-07T21:03:00Z"}},
    ):
        container["state"] = state
        assert podstate.why_not_ready([pod]) is None, state
    del pod["status"]["containerStatuses"]
    assert podstate.why_not_ready([pod]) is None  # scheduled, nothing started yet
    assert podstate.why_not_ready([]) is None


def test_running_again_after_a_crash_and_a_failed_init_container() -> None:
    (pod,) = recorded("crash-loop")
    pod["status"]["containerStatuses"][0]["state"] = {"running": {"startedAt": "2026-12-07T21:12:00Z"}}
    assert podstate.why_not_ready([pod]) == (
        "pod paris-6d9f7c8b5-x2x7q container proxy is running but not ready"
        " (image ghcr.io/weather-proxy/proxy:0.1.0), last terminated: Error, exit code 2, 4 restarts"
    )
    (pod,) = recorded("image-pull-backoff")
    pod["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "PodInitializing"}}
    pod["spec"]["initContainers"] = [{"name": "init", "image": "busybox:1.36"}]
    pod["status"]["initContainerStatuses"] = [
        {"name": "init", "state": {"terminated": {"reason": "Error", "exitCode": 1}}}
    ]
    assert podstate.why_not_ready([pod]) == (
        "pod weather-redis-0 init container init terminated: Error, exit code 1 (image busybox:1.36)"
    )


def test_ready_pods_and_terminating_pods() -> None:
    ready = recorded("config-error-and-ready")[1]
    assert podstate.why_not_ready([ready]) is None
    leaving = copy.deepcopy(recorded("crash-loop")[0])
    leaving["metadata"]["deletionTimestamp"] = "2026-12-07T21:11:00Z"
    assert podstate.why_not_ready([leaving, ready]) is None


def test_a_long_kubelet_message_is_clipped() -> None:
    (pod,) = recorded("unschedulable")
    pod["status"]["conditions"][0]["message"] = "x" * 2000
    said = podstate.why_not_ready([pod])
    assert said is not None
    assert len(said) < podstate.MESSAGE_CHARS + 60
    assert said.endswith("...")


@pytest.mark.parametrize(
    ("ready", "updated", "wanted", "look"),
    [(1, 1, 1, False), (0, 1, 1, True), (2, 1, 2, True), (2, 2, 2, False), (0, 0, 0, False)],
)
def test_only_a_child_short_of_ready_or_updated_pods_is_looked_at(
    ready: int, updated: int, wanted: int, look: bool
) -> None:
    workload = {"status": {"readyReplicas": ready, "updatedReplicas": updated}}
    assert podstate.needs_a_look(workload, wanted) is look
    assert podstate.needs_a_look(None, wanted) is False


def test_the_selector_is_the_childs_labels() -> None:
    assert podstate.selector({"b": "2", "a": "1"}) == "a=1,b=2"


# --- the conditions that carry the pods' words ------------------------------------------------------


def _spec() -> Any:
    return resolve.effective(
        weatherproxy.WeatherProxySpec.model_validate({"environment": "dev"}), default_image="img"
    )


def _conditions(**observation: Any) -> dict[str, tuple[str, str, str]]:
    base: dict[str, Any] = {
        "name": "weather",
        "namespace": "weather",
        "generation": 1,
        "spec": _spec(),
        "deployment": {
            "metadata": {"generation": 1},
            "spec": {"replicas": 1},
            "status": {"replicas": 1, "readyReplicas": 1, "updatedReplicas": 1, "observedGeneration": 1},
        },
        "redis": status.RedisObservation(managed=True, ready=True, detail="Redis is ready"),
        "monitoring": status.MonitoringObservation(wanted=False, available=False),
        "api_keys": 0,
        "config_hash": "h",
        "selector": "s",
    }
    obs = status.ProxyObservation(**{**base, **observation})
    return {c.type: (c.status, c.reason, c.message) for c in status.proxy_conditions(obs)}


def test_redis_that_cannot_pull_its_image_says_so_in_degraded_and_redis_ready() -> None:
    why = podstate.why_not_ready(recorded("image-pull-backoff"))
    redis = status.redis_from_statefulset({"status": {"readyReplicas": 0}}, why)
    got = _conditions(redis=redis)
    expected = (
        "Redis has no ready replica: pod weather-redis-0 container redis is waiting: ImagePullBackOff"
        " (image localhost/wpf/redis:7.0-bookworm)"
    )
    assert got["Degraded"] == ("True", "RedisUnavailable", expected)
    assert got["RedisReady"] == ("False", "StatefulSetNotReady", expected)
    assert got["Ready"][:2] == ("True", "AllReplicasReady")


def test_proxies_that_crash_say_so_in_ready_progressing_and_degraded() -> None:
    why = podstate.why_not_ready(recorded("crash-loop"))
    deployment = {
        "metadata": {"generation": 1},
        "spec": {"replicas": 2},
        "status": {"replicas": 2, "readyReplicas": 1, "updatedReplicas": 2, "observedGeneration": 1},
    }
    spec = resolve.effective(
        weatherproxy.WeatherProxySpec.model_validate({"environment": "dev", "replicas": 2}),
        default_image="img",
    )
    got = _conditions(spec=spec, deployment=deployment, proxy_pods=why)
    assert got["Ready"] == ("False", "ReplicasNotReady", f"1/2 replicas ready: {why}")
    assert got["Degraded"] == ("True", "ReplicasUnavailable", f"1/2 replicas ready: {why}")
    rolling = {**deployment, "status": {**deployment["status"], "readyReplicas": 2, "updatedReplicas": 1}}
    got = _conditions(spec=spec, deployment=rolling, proxy_pods=why)
    assert got["Progressing"] == ("True", "RollingOut", f"1/2 replicas updated: {why}")
    assert got["Ready"][0] == "True"


def test_without_a_look_the_messages_stay_as_they_were() -> None:
    assert status.redis_from_statefulset({"status": {}}).detail == "Redis has no ready replica"
    deployment = {"metadata": {"generation": 1}, "spec": {"replicas": 1}, "status": {"readyReplicas": 0}}
    assert _conditions(deployment=deployment)["Ready"] == ("False", "ReplicasNotReady", "0/1 replicas ready")


def test_the_database_that_cannot_be_scheduled_says_so_in_analytics_ready() -> None:
    why = podstate.why_not_ready(recorded("unschedulable"))
    effective = analytics.resolve(
        analytics.AnalyticsSpec.model_validate({"enabled": True}), config.Environment("staging")
    )
    observed = status.analytics_readiness("paris", effective, False, {"status": {"readyReplicas": 0}}, why)
    assert (observed.status, observed.reason) == ("False", "DatabaseNotReady")
    assert observed.message == f"StatefulSet paris-postgres: PostgreSQL not ready yet: {why}"
