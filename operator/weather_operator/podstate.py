"""Why a child's pods are not ready, said as ``kubectl describe pod`` says it: pure functions.

When a fleet's proxy Deployment, its Redis or its PostgreSQL is not ready, the operator
reads that child's pods (by the child's selector, only then: ``controller.pods``) and the
status conditions name what the newcomer would otherwise look up in the pods themselves:
``pod paris-redis-0 container redis is waiting: ImagePullBackOff (image redis:7.4-alpine)``.
Pods are passed in as the API server returned them; nothing here reads the cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# Waiting reasons that need someone to act (the others are a container on its way up).
TROUBLE = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
        "PreStartHookError",
        "PostStartHookError",
    }
)
# Reasons whose message names the cause (a missing Secret or key) rather than repeating the reason.
WITH_MESSAGE = frozenset({"CreateContainerConfigError", "CreateContainerError", "RunContainerError"})
MESSAGE_CHARS = 300
"""How much of a kubelet message a condition repeats."""


def selector(labels: Mapping[str, str]) -> str:
    """A label selector (``a=b,c=d``) from a child's ``matchLabels``."""
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def needs_a_look(workload: Mapping[str, Any] | None, wanted: int) -> bool:
    """Whether a Deployment/StatefulSet (as last seen) has fewer ready or updated pods than ``wanted``."""
    if workload is None or wanted < 1:
        return False
    found: Mapping[str, Any] = workload.get("status") or {}
    ready = int(found.get("readyReplicas") or 0)
    updated = int(found.get("updatedReplicas") or 0)
    return ready < wanted or updated < wanted


def why_not_ready(pods: Iterable[Mapping[str, Any]]) -> str | None:
    """One sentence about the pods in trouble: the most telling one, and how many others.

    Trouble is what needs someone to act: a container waiting for a reason in ``TROUBLE``, a
    pod the scheduler found no node for, a container that terminated, a container running
    again after a crash but not ready. A pod on its normal way up (being scheduled, pulling,
    ``ContainerCreating``, a readiness probe not passed yet) is not: None then, so that the
    status does not change with every step of a start.
    """
    live = [pod for pod in pods if not (pod.get("metadata") or {}).get("deletionTimestamp")]
    found = sorted(
        (problem for pod in live if (problem := _problem(pod)) is not None), key=lambda p: (p[0], p[1])
    )
    if not found:
        return None
    _rank, _name, sentence = found[0]
    if len(found) > 1:
        others = len(found) - 1
        sentence += f" (and {others} more {'pod' if others == 1 else 'pods'} in trouble)"
    return sentence


def _problem(pod: Mapping[str, Any]) -> tuple[int, str, str] | None:
    """(rank, pod name, sentence) for a pod in trouble; lower ranks tell more."""
    metadata: Mapping[str, Any] = pod.get("metadata") or {}
    name = str(metadata.get("name", "?"))
    found: Mapping[str, Any] = pod.get("status") or {}
    conditions = {str(c.get("type")): c for c in found.get("conditions") or []}
    if (conditions.get("Ready") or {}).get("status") == "True":
        return None
    images = _images(pod)
    best: tuple[int, str] | None = None
    for init, statuses in (
        (True, found.get("initContainerStatuses")),
        (False, found.get("containerStatuses")),
    ):
        for container in statuses or []:
            seen = _container(container, init, images)
            if seen is not None and (best is None or seen[0] < best[0]):
                best = seen
    if best is not None and best[0] == 0:
        return 0, name, f"pod {name} {best[1]}"
    scheduled = conditions.get("PodScheduled") or {}
    if scheduled.get("status") == "False":
        why = _clip(str(scheduled.get("message") or scheduled.get("reason") or "no node fits"))
        return 1, name, f"pod {name} is not scheduled: {why}"
    if best is not None:
        return best[0], name, f"pod {name} {best[1]}"
    return None


def _container(container: Mapping[str, Any], init: bool, images: Mapping[str, str]) -> tuple[int, str] | None:
    """(rank, words) for one container status in trouble."""
    name = str(container.get("name", "?"))
    image = images.get(name) or str(container.get("image") or "?")
    what = f"{'init container' if init else 'container'} {name}"
    state: Mapping[str, Any] = container.get("state") or {}
    waiting, terminated = state.get("waiting"), state.get("terminated")
    if waiting is not None:
        reason = str(waiting.get("reason") or "Waiting")
        words = f"{what} is waiting: {reason}"
        if reason in WITH_MESSAGE and waiting.get("message"):
            words += f": {_clip(str(waiting['message']))}"
        words += f" (image {image}){_crashed(container)}"
        if reason in TROUBLE:
            return 0, words
        return (3, words) if _crashed(container) else None
    if terminated is not None:
        if init and int(terminated.get("exitCode") or 0) == 0:
            return None  # an init container that finished its work
        return 2, f"{what} terminated: {_termination(terminated)} (image {image})"
    if container.get("ready") or init or state.get("running") is None or not _crashed(container):
        return None
    return 3, f"{what} is running but not ready (image {image}){_crashed(container)}"


def _crashed(container: Mapping[str, Any]) -> str:
    """``, last terminated: Error, exit code 1, 3 restarts`` for a container that ended before; else empty."""
    last = (container.get("lastState") or {}).get("terminated")
    if last is None:
        return ""
    words = f", last terminated: {_termination(last)}"
    restarts = int(container.get("restartCount") or 0)
    if restarts:
        words += f", {restarts} restart{'s' if restarts != 1 else ''}"
    return words


def _termination(terminated: Mapping[str, Any]) -> str:
    reason = str(terminated.get("reason") or "Terminated")
    if terminated.get("signal"):
        return f"{reason}, signal {terminated['signal']}"
    return f"{reason}, exit code {int(terminated.get('exitCode') or 0)}"


def _images(pod: Mapping[str, Any]) -> dict[str, str]:
    """Container name -> image as the pod spec names it (what ``kubectl describe`` shows as Image)."""
    spec: Mapping[str, Any] = pod.get("spec") or {}
    containers: Sequence[Mapping[str, Any]] = [
        *(spec.get("initContainers") or []),
        *(spec.get("containers") or []),
    ]
    return {str(c.get("name")): str(c.get("image")) for c in containers if c.get("image")}


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 3] + "..."
