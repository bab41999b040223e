"""Blue/green rollouts on real pods under steady load (docs/rollouts.md): promoted, aborted, by hand.

One fleet of its own (``bluegreen``: one proxy per slot, autoscaled up to two; Redis without a
volume; no usage history) with ``spec.strategy.type: BlueGreen`` and a short analysis, so that
the overlay's ``paris`` stays as the other modules expect it. Consumers use the fleet's main
Service the whole time, with a key whose limit is far above their load: a cached city back to
back, and coordinates no cache holds about once a second (those reach the upstream through the
active slot). Every non-200 is a failed request. In turn:

a) a good change (a config field, so a new pod template) starts the other slot, is analysed
   and promoted: Progressing -> Analyzing -> Stable with the active slot switched, the main
   Service and the HPA on the new slot, the old slot scaled to 0 after ``scaleDownDelaySeconds``;
b) an image that never gets Ready (a tag no registry has) is aborted at the progress deadline;
c) a candidate whose upstream answers errors fails its analysis (the operator's smoke requests
   get 5xx) and is aborted automatically, while the active slot goes on serving;
d) with ``autoPromote: false`` a passed analysis waits for ``weatherproxy.dev/promote``, and
   ``weatherproxy.dev/abort`` aborts a rollout in progress.

No failed consumer request in any of them; the figures (time to promote, requests, failures)
are printed and repeated in the run's summary. Where the host reaches no ClusterIP (kind), or
with WPF_E2E_LOAD_FROM_POD=1, the consumers run in a pod of the namespace instead.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import random
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from email.message import Message
from typing import Any

import pytest

from e2e import cluster as k
from e2e import conftest as fx

# A test here waits for up to two rollouts (pods Ready, analysed, the old slot drained); the first
# one of a run of this module alone also builds the images and starts the cluster.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

FLEET = "bluegreen"
LOAD_KEY = "bluegreen-load"
LOAD_CLIENT = "bluegreen-consumer"  # the in-cluster consumer where the host reaches no ClusterIP (kind)
WORKERS = 3
FROM_POD = "WPF_E2E_LOAD_FROM_POD"  # set: the consumers run in a pod on the real node too, as on kind
SLOT = "weatherproxy.dev/slot"
PROMOTE = "weatherproxy.dev/promote"
ABORT = "weatherproxy.dev/abort"
SLOTS = ("blue", "green")
ANALYSIS_SECONDS = 15
MIN_REQUESTS = 10
MAX_ERROR_RATIO = 0.01
# Lenient on latency: a fresh pod's first misses go to the upstream; this module tests the
# flow, bench/ measures speed.
MAX_P95_SECONDS = 2.0
SCALE_DOWN_DELAY = 15
PROGRESS_DEADLINE = 90  # a good candidate: pods Ready and analysed well within it
SHORT_DEADLINE = 30  # (b): the candidate that never gets Ready is given up sooner
ROLLOUT_BOUND = 240.0  # a rollout (pods Ready, analysed, promoted) must end within this


def blue_green(**overrides: Any) -> dict[str, Any]:
    strategy: dict[str, Any] = {
        "autoPromote": True,
        "scaleDownDelaySeconds": SCALE_DOWN_DELAY,
        "progressDeadlineSeconds": PROGRESS_DEADLINE,
        "analysis": {
            "durationSeconds": ANALYSIS_SECONDS,
            "minRequests": MIN_REQUESTS,
            "maxErrorRatio": MAX_ERROR_RATIO,
            "maxP95Seconds": MAX_P95_SECONDS,
            "smokeRequestsPerSecond": 2,
        },
    }
    strategy.update(overrides)
    return {"type": "BlueGreen", "blueGreen": strategy}


def other(slot: str) -> str:
    return SLOTS[1 - SLOTS.index(slot)]


def fleet_object(kube: k.Kube) -> dict[str, Any]:
    found: dict[str, Any] = kube.json("-n", fx.NAMESPACE, "get", f"weatherproxy/{FLEET}")
    return found


def rollout_of(kube: k.Kube) -> dict[str, Any]:
    found: dict[str, Any] = fleet_object(kube).get("status", {}).get("rollout") or {}
    return found


def condition(kube: k.Kube, kind: str) -> dict[str, Any] | None:
    conditions = fleet_object(kube).get("status", {}).get("conditions", [])
    return next((c for c in conditions if c["type"] == kind), None)


def selected_slot(kube: k.Kube, service: str) -> str | None:
    found = kube.json("-n", fx.NAMESPACE, "get", f"service/{service}")
    slot: str | None = found["spec"].get("selector", {}).get(SLOT)
    return slot


def slot_replicas(kube: k.Kube, slot: str) -> tuple[int, int]:
    """(spec.replicas, pods that exist) of one slot's Deployment and its pods."""
    deployment = kube.json("-n", fx.NAMESPACE, "get", f"deployment/{FLEET}-{slot}")
    pods = kube.json(
        "-n", fx.NAMESPACE, "get", "pods", "-l", f"app.kubernetes.io/instance={FLEET},{SLOT}={slot}"
    )["items"]
    return int(deployment["spec"].get("replicas", 1)), len(pods)


def stable(kube: k.Kube, timeout: float = ROLLOUT_BOUND) -> dict[str, Any]:
    """The fleet's rollout once it is Stable on a ready active slot."""

    def check() -> dict[str, Any] | None:
        rollout = rollout_of(kube)
        if rollout.get("phase") != "Stable" or rollout.get("activeSlot") not in SLOTS:
            return None
        return rollout if slot_replicas(kube, rollout["activeSlot"])[0] >= 1 else None

    return k.eventually(check, timeout, f"weatherproxy/{FLEET} Stable", interval=1)


def wait_phase(kube: k.Kube, phase: str, timeout: float = ROLLOUT_BOUND) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        rollout = rollout_of(kube)
        return rollout if rollout.get("phase") == phase else None

    return k.eventually(check, timeout, f"status.rollout.phase {phase}", interval=0.5)


def hpa_target(kube: k.Kube) -> str:
    hpa = kube.json("-n", fx.NAMESPACE, "get", f"hpa/{FLEET}")
    return str(hpa["spec"]["scaleTargetRef"]["name"])


def promoted_to(kube: k.Kube, slot: str) -> dict[str, Any] | None:
    rollout = rollout_of(kube)
    return rollout if rollout.get("phase") == "Stable" and rollout.get("activeSlot") == slot else None


def aborted_because(kube: k.Kube) -> str:
    """The reason of the True RolloutAborted condition."""
    found = condition(kube, "RolloutAborted")
    assert found is not None
    assert found["status"] == "True", found
    return str(found["reason"])


def events(kube: k.Kube, reason: str) -> int:
    """How many times the fleet got an Event of this reason (a repeated Event counts its repeats)."""
    selector = f"involvedObject.kind=WeatherProxy,involvedObject.name={FLEET},reason={reason}"
    found = kube.json("-n", fx.NAMESPACE, "get", "events", "--field-selector", selector)["items"]
    return sum(int(event.get("count") or 1) for event in found)


def annotate(kube: k.Kube, annotation: str) -> None:
    kube.kubectl("-n", fx.NAMESPACE, "annotate", "--overwrite", f"weatherproxy/{FLEET}", f"{annotation}=true")


def annotation_removed(kube: k.Kube, annotation: str) -> bool:
    return annotation not in (fleet_object(kube)["metadata"].get("annotations") or {})


def pull_failed(kube: k.Kube, slot: str) -> bool:
    """A pod of the slot waits on an image that cannot be pulled."""
    selector = f"app.kubernetes.io/instance={FLEET},{SLOT}={slot}"
    pods = kube.json("-n", fx.NAMESPACE, "get", "pods", "-l", selector)["items"]
    reasons = {
        (status.get("state", {}).get("waiting") or {}).get("reason")
        for pod in pods
        for status in pod["status"].get("containerStatuses", [])
    }
    return bool(reasons & {"ErrImagePull", "ImagePullBackOff"})


def scaled_to_zero(kube: k.Kube, slot: str) -> bool:
    return slot_replicas(kube, slot) == (0, 0)


class PhaseLog:
    """The phases ``status.rollout`` goes through while the block runs (polled every half second)."""

    def __init__(self, kube: k.Kube) -> None:
        self.kube = kube
        self.seen: list[tuple[float, str]] = []
        self.verdict: dict[str, Any] = {}  # the last decided status.rollout.analysis (passed true or false)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rollout = rollout_of(self.kube)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired, ValueError):  # a missed poll
                rollout = {}
            phase = str(rollout.get("phase") or "")
            if (rollout.get("analysis") or {}).get("passed") is not None:
                self.verdict = rollout["analysis"]
            if phase and (not self.seen or self.seen[-1][1] != phase):
                self.seen.append((time.monotonic(), phase))
            self._stop.wait(0.5)

    @property
    def phases(self) -> list[str]:
        return [phase for _, phase in self.seen]

    def __enter__(self) -> PhaseLog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)


def in_order(phases: list[str], *expected: str) -> bool:
    """``expected`` occur in ``phases`` in this order (others may come between)."""
    remaining = iter(phases)
    return all(phase in remaining for phase in expected)


# Consumers ask for a cached city back to back, and for coordinates no cache holds at about one
# request a second (within the fleet's upstream budget): those go to the upstream through the
# active slot, so anything a candidate does to the fleet's shared upstream state shows there.
CITY = "/v1/weather?city=Paris"
ANYWHERE = "/v1/weather?lat={lat}&lon={lon}"
ANYWHERE_PAUSE = 1.0


def place(template: str) -> str:
    """``template`` with ``{lat}``/``{lon}`` drawn at random (0.01° apart: ~1 km, the cache's grain)."""
    return template.format(lat=random.randint(-8900, 8900) / 100, lon=random.randint(-17900, 17900) / 100)


def paced_get(pause: float) -> Callable[..., tuple[int, Message, bytes]]:
    """SteadyLoad's ``get`` for a URL template: a new place each time, ``pause`` seconds apart."""

    def get(
        url: str, headers: dict[str, str] | None = None, timeout: float = 10
    ) -> tuple[int, Message, bytes]:
        time.sleep(pause)
        return k.http_get(place(url), headers, timeout)

    return get


# The same consumers in a pod of the namespace (kind: the host reaches no ClusterIP, and a
# port-forward sticks to one pod, which a slot switch removes). GETs the URL template argv[1]
# with the key argv[2] on argv[3] threads, argv[5] seconds apart, until its stdin closes (or
# argv[4] seconds pass), then prints the counts as JSON; the same outcomes as SteadyLoad's.
IN_POD_LOAD = (
    "import json, random, sys, threading, time, urllib.error as e, urllib.request as u\n"
    "url, key, workers, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])\n"
    "pause = float(sys.argv[5])\n"
    "stop, lock, sent, failures = threading.Event(), threading.Lock(), [0], []\n"
    "def run():\n"
    "    while not stop.is_set():\n"
    "        lat, lon = random.randint(-8900, 8900) / 100, random.randint(-17900, 17900) / 100\n"
    "        where = url.format(lat=lat, lon=lon)\n"
    "        try:\n"
    "            with u.urlopen(u.Request(where, headers={'X-API-Key': key}), timeout=5) as r:\n"
    "                r.read()\n"
    "                outcome = None if r.status == 200 else f'HTTP {r.status}'\n"
    "        except e.HTTPError as exc:\n"
    "            outcome = f'HTTP {exc.code}: {exc.read()[:120]!r}'\n"
    "        except Exception as exc:\n"
    "            outcome = f'{type(exc).__name__}: {exc}'\n"
    "        with lock:\n"
    "            sent[0] += 1\n"
    "            if outcome:\n"
    "                failures.append(outcome)\n"
    "        stop.wait(pause)\n"
    "threads = [threading.Thread(target=run, daemon=True) for _ in range(workers)]\n"
    "for t in threads:\n"
    "    t.start()\n"
    "threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()\n"
    "print('started', flush=True)\n"
    "stop.wait(limit)\n"
    "stop.set()\n"
    "for t in threads:\n"
    "    t.join(10)\n"
    "print(json.dumps({'sent': sent[0], 'failures': failures[:500]}), flush=True)\n"
)
IN_POD_GET = (
    "import sys, urllib.error as e, urllib.request as u\n"
    "for _ in range(int(sys.argv[3])):\n"
    "    try:\n"
    "        with u.urlopen(u.Request(sys.argv[1], headers={'X-API-Key': sys.argv[2]}), timeout=5) as r:\n"
    "            print(r.status)\n"
    "    except e.HTTPError as exc:\n"
    "        print(exc.code)\n"
)


class InPodLoad:
    """SteadyLoad's counterpart run by ``kubectl exec`` in a pod of the namespace."""

    def __init__(
        self, kube: k.Kube, pod: str, url: str, key: str, workers: int, pause: float, max_seconds: float = 900
    ):
        self.kube, self.pod, self.url, self.key = kube, pod, url, key
        self.workers, self.pause, self.max_seconds = workers, pause, max_seconds
        self.result = k.LoadResult()
        self._proc: Any = None

    def __enter__(self) -> InPodLoad:
        self._proc = subprocess.Popen(
            ["kubectl", "--kubeconfig", str(self.kube.kubeconfig), "-n", fx.NAMESPACE, "exec", "-i", self.pod,
             "--", "python", "-c", IN_POD_LOAD, self.url, self.key, str(self.workers), str(self.max_seconds),
             str(self.pause)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        first = self._proc.stdout.readline().strip()
        if first != "started":
            raise AssertionError(f"the in-pod load did not start: {first} {self._proc.stderr.read()[:2000]}")
        return self

    def __exit__(self, *exc: object) -> None:
        out, err = self._proc.communicate(input="", timeout=60)
        lines = out.strip().splitlines()
        if not lines:
            raise AssertionError(f"the in-pod load printed no counts: {err[:2000]}")
        counts = json.loads(lines[-1])
        self.result.sent = counts["sent"]
        self.result.failures = counts["failures"]
        self.result.ok = self.result.sent - len(self.result.failures)


Load = k.SteadyLoad | InPodLoad


class ConsumerLoad:
    """The city load and the anywhere load together; ``result`` adds them up."""

    def __init__(self, city: Load, anywhere: Load) -> None:
        self.city, self.anywhere = city, anywhere
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> ConsumerLoad:
        self._stack.enter_context(self.city)
        self._stack.enter_context(self.anywhere)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @property
    def result(self) -> k.LoadResult:
        city, anywhere = self.city.result, self.anywhere.result
        return k.LoadResult(
            sent=city.sent + anywhere.sent,
            ok=city.ok + anywhere.ok,
            failures=city.failures + anywhere.failures,
        )


class Consumers:
    """The fleet's consumers: steady load and a few probing GETs, from the host or from a pod."""

    def __init__(self, kube: k.Kube, key: str, client_pod: str | None) -> None:
        self.kube, self.key, self.client_pod = kube, key, client_pod
        if client_pod is None:
            self.base = kube.service_url(fx.NAMESPACE, FLEET)
        else:
            self.base = f"http://{FLEET}.{fx.NAMESPACE}.svc.cluster.local:8080"

    def statuses(self, times: int) -> list[int]:
        url = self.base + CITY
        if self.client_pod is None:
            return [k.http_get(url, {"X-API-Key": self.key})[0] for _ in range(times)]
        out = self.kube.kubectl(
            "-n", fx.NAMESPACE, "exec", self.client_pod, "--", "python", "-c", IN_POD_GET, url, self.key,
            str(times),
        )  # fmt: skip
        return [int(line) for line in out.split()]

    def load(self) -> ConsumerLoad:
        city, anywhere = self.base + CITY, self.base + ANYWHERE
        if self.client_pod is None:
            headers = {"X-API-Key": self.key}
            return ConsumerLoad(
                k.SteadyLoad(city, headers, workers=WORKERS),
                k.SteadyLoad(anywhere, headers, workers=1, get=paced_get(ANYWHERE_PAUSE)),
            )
        return ConsumerLoad(
            InPodLoad(self.kube, self.client_pod, city, self.key, WORKERS, 0.02),
            InPodLoad(self.kube, self.client_pod, anywhere, self.key, 1, ANYWHERE_PAUSE),
        )


@pytest.fixture(scope="module")
def bluegreen(installed: k.Kube, fleet: str) -> Iterator[str]:
    """The module's BlueGreen fleet, Stable, beside the overlay's ``paris`` (whose spec it copies)."""
    spec = {**installed.json("-n", fx.NAMESPACE, "get", f"weatherproxy/{fleet}")["spec"], "replicas": 1}
    for field in ("tls", "image", "ingress"):
        spec.pop(field, None)
    spec["autoscaling"] = {
        "enabled": True,
        "minReplicas": 1,
        "maxReplicas": 2,
    }  # the HPA follows the active slot
    spec["analytics"] = {"enabled": False}
    spec["tracing"] = {"enabled": False}
    spec["redis"] = {"managed": {**spec["redis"]["managed"], "persistence": {"enabled": False}}}
    spec["strategy"] = blue_green()
    installed.apply(
        {"apiVersion": "weatherproxy.dev/v1alpha1", "kind": "WeatherProxy",
         "metadata": {"name": FLEET, "namespace": fx.NAMESPACE}, "spec": spec}
    )  # fmt: skip
    try:
        fx.wait_ready(installed, f"weatherproxy/{FLEET}")
        stable(installed)
        yield FLEET
    finally:
        installed.kubectl(
            "-n", fx.NAMESPACE, "delete", f"apikey/{LOAD_KEY}", "--ignore-not-found", "--wait=true"
        )
        installed.kubectl(
            "-n",
            fx.NAMESPACE,
            "delete",
            f"weatherproxy/{FLEET}",
            "--wait=true",
            "--timeout=180s",
            check=False,
        )


@pytest.fixture(scope="module")
def consumers(installed: k.Kube, bluegreen: str) -> Iterator[Consumers]:
    """A key far above the load, answered 200 through the main Service many times in a row."""
    installed.apply(fx.apikey(LOAD_KEY, bluegreen, rateLimit={"requestsPerMinute": 100_000, "burst": 10_000}))
    fx.wait_ready(installed, f"apikey/{LOAD_KEY}")
    key = fx.key_of(installed, LOAD_KEY)
    if installed.host_reaches_services and not os.environ.get(FROM_POD):
        found = Consumers(installed, key, None)
        k.eventually(lambda: set(found.statuses(10)) == {200}, 150, "the load key accepted", interval=2)
        yield found
        return
    with fx.probe_pod(installed, LOAD_CLIENT) as pod:
        found = Consumers(installed, key, pod)
        k.eventually(lambda: set(found.statuses(10)) == {200}, 150, "the load key accepted", interval=2)
        yield found


@pytest.fixture(autouse=True)
def spec_put_back(request: pytest.FixtureRequest, installed: k.Kube, bluegreen: str) -> Iterator[None]:
    """After a failed test, the fleet's spec as the test found it (its rollout then cancelled).

    Without it one failure cascades: the next test would start from a rollout left Aborted or in
    progress. A test that passes leaves the fleet as the next one expects.
    """
    saved = fleet_object(installed)["spec"]
    yield
    if request.node.stash.get(fx.FAILED_KEY, False) and fleet_object(installed)["spec"] != saved:
        print(f"\n[e2e] the failed test's spec put back; status.rollout was {rollout_of(installed)}")
        installed.kubectl(
            "-n", fx.NAMESPACE, "patch", f"weatherproxy/{bluegreen}", "--type=json",
            "-p", json.dumps([{"op": "replace", "path": "/spec", "value": saved}]),
        )  # fmt: skip


def figures(title: str, load: ConsumerLoad, **measured: float) -> None:
    extra = "".join(f", {name.replace('_', ' ')} {value:.1f}s" for name, value in measured.items())
    line = (
        f"blue/green {title}: {load.result.sent} requests ({load.anywhere.result.sent} of them uncached"
        f" coordinates), {len(load.result.failures)} failed{extra}"
    )
    k.MEASURED.append(line)
    print(f"\n[e2e timing] {line}", flush=True)


def no_failures(load: ConsumerLoad) -> None:
    assert load.city.result.sent > 50, load.city.result.sent
    assert load.anywhere.result.sent > 5, load.anywhere.result.sent
    assert load.result.failures == [], collections.Counter(load.result.failures).most_common(5)


def start_rollout(kube: k.Kube, spec: dict[str, Any]) -> float:
    """Patch the fleet's spec; returns when the patch was applied (monotonic seconds)."""
    started = time.monotonic()
    fx.patch_fleet(kube, FLEET, spec)
    return started


def test_a_good_change_is_analysed_and_promoted(installed: k.Kube, consumers: Consumers) -> None:
    before = stable(installed)
    active, preview = before["activeSlot"], other(before["activeSlot"])
    assert selected_slot(installed, FLEET) == active
    assert hpa_target(installed) == f"{FLEET}-{active}"
    ttl = fleet_object(installed)["spec"].get("cache", {}).get("ttlSeconds", 300)
    steps = ("RolloutStarted", "RolloutAnalyzing", "RolloutPromoted", "RolloutScaledDown")
    events_before = {reason: events(installed, reason) for reason in steps}
    with consumers.load() as load, PhaseLog(installed) as log:
        time.sleep(3)  # the load runs before the change
        started = start_rollout(installed, {"cache": {"ttlSeconds": ttl + 1}})
        analyzing = wait_phase(installed, "Analyzing")
        assert analyzing["previewSlot"] == preview, analyzing
        assert selected_slot(installed, f"{FLEET}-preview") == preview
        assert selected_slot(installed, FLEET) == active, "the main Service moved before the analysis ended"

        k.eventually(
            lambda: selected_slot(installed, FLEET) == preview,
            ROLLOUT_BOUND,
            f"the main Service switched to {preview}",
            interval=0.5,
        )
        switched_at = time.monotonic()
        time_to_promote = switched_at - started
        # The old slot stays up for scaleDownDelaySeconds (connections in flight drain), then goes.
        assert slot_replicas(installed, active)[0] >= 1, "the old slot scaled down with the switch"
        after = k.eventually(
            lambda: promoted_to(installed, preview), 120, f"Stable on {preview}", interval=0.5
        )
        k.eventually(lambda: scaled_to_zero(installed, active), SCALE_DOWN_DELAY + 120, f"{active} at 0")
        scaled_down_after = time.monotonic() - switched_at
        time.sleep(3)  # and the load goes on after it
    figures(
        "good change promoted",
        load,
        time_to_promote=time_to_promote,
        old_slot_at_zero_after_promotion=scaled_down_after,
    )
    print(f"[e2e] phases: {log.phases}; analysis: {log.verdict}; {after.get('message')}", flush=True)
    assert in_order(log.phases, "Progressing", "Analyzing", "Stable"), log.phases
    assert scaled_down_after >= SCALE_DOWN_DELAY - 2, (
        f"old slot gone {scaled_down_after:.1f}s after the switch"
    )
    analysis = log.verdict
    assert analysis.get("passed") is True, analysis
    assert analysis["requests"] >= MIN_REQUESTS, analysis
    assert analysis["errorRatio"] <= MAX_ERROR_RATIO, analysis
    assert (condition(installed, "RolloutAborted") or {}).get("status") != "True"
    missing_events = [reason for reason in steps if events(installed, reason) <= events_before[reason]]
    assert not missing_events, f"no new Event for {missing_events}"
    # The HPA and the PDB follow the active slot.
    assert hpa_target(installed) == f"{FLEET}-{preview}"
    pdb = installed.json("-n", fx.NAMESPACE, "get", f"pdb/{FLEET}")
    assert pdb["spec"]["selector"]["matchLabels"].get(SLOT) == preview, pdb["spec"]
    no_failures(load)


def test_an_image_that_never_gets_ready_is_aborted(installed: k.Kube, consumers: Consumers) -> None:
    before = stable(installed)
    active, preview = before["activeSlot"], other(before["activeSlot"])
    # No registry has it (the pull fails: ErrImagePull, then back-off), and none is asked far away.
    missing = "localhost/wpf/proxy:does-not-exist"
    with consumers.load() as load, PhaseLog(installed) as log:
        time.sleep(3)
        started = start_rollout(
            installed, {"image": missing, "strategy": blue_green(progressDeadlineSeconds=SHORT_DEADLINE)}
        )
        k.eventually(lambda: pull_failed(installed, preview), SHORT_DEADLINE, f"{preview}'s pull to fail")
        aborted = wait_phase(installed, "Aborted", SHORT_DEADLINE + 120)
        time_to_abort = time.monotonic() - started
        assert aborted["activeSlot"] == active, aborted
        assert selected_slot(installed, FLEET) == active
        k.eventually(lambda: scaled_to_zero(installed, preview), 120, f"the candidate slot {preview} at 0")
        time.sleep(3)
    figures("image never Ready, aborted", load, time_to_abort=time_to_abort)
    print(f"[e2e] phases: {log.phases}; message: {aborted.get('message')}", flush=True)
    assert in_order(log.phases, "Progressing", "Aborted"), log.phases
    assert "Analyzing" not in log.phases, "a candidate without a Ready pod was analysed"
    assert aborted_because(installed) == "ProgressDeadlineExceeded"
    no_failures(load)
    # The spec back as the active slot runs it: Stable again.
    fx.patch_fleet(installed, FLEET, {"image": None, "strategy": blue_green()})
    stable(installed)


def test_a_candidate_that_fails_analysis_is_aborted(installed: k.Kube, consumers: Consumers) -> None:
    before = stable(installed)
    active, preview = before["activeSlot"], other(before["activeSlot"])
    upstream = fleet_object(installed)["spec"]["upstream"]
    # The emulator answers 404 on any other path: the candidate's upstream calls fail, so does
    # every smoke request that needs the upstream (docs/rollouts.md: what the smoke requests ask).
    broken = {
        "geocodingUrl": upstream["geocodingUrl"].rsplit("/v1/", 1)[0] + "/broken/search",
        "forecastUrl": upstream["forecastUrl"].rsplit("/v1/", 1)[0] + "/broken/forecast",
    }
    with consumers.load() as load, PhaseLog(installed) as log:
        time.sleep(3)
        started = start_rollout(installed, {"upstream": broken})
        aborted = wait_phase(installed, "Aborted")
        time_to_abort = time.monotonic() - started
        assert aborted["activeSlot"] == active, aborted
        assert selected_slot(installed, FLEET) == active
        k.eventually(lambda: scaled_to_zero(installed, preview), 120, f"the candidate slot {preview} at 0")
        time.sleep(3)
    figures("failed analysis, aborted", load, time_to_abort=time_to_abort)
    print(f"[e2e] phases: {log.phases}; analysis: {log.verdict}; {aborted.get('message')}", flush=True)
    assert in_order(log.phases, "Progressing", "Analyzing", "Aborted"), log.phases
    analysis = log.verdict
    assert analysis["errorRatio"] is not None, analysis
    assert analysis["errorRatio"] > MAX_ERROR_RATIO, analysis
    assert analysis.get("passed") is False, analysis
    assert aborted_because(installed) == "AnalysisFailed"
    no_failures(load)
    fx.patch_fleet(installed, FLEET, {"upstream": upstream})
    stable(installed)


def test_manual_promotion_and_abort_by_annotation(installed: k.Kube, consumers: Consumers) -> None:
    before = stable(installed)
    active, preview = before["activeSlot"], other(before["activeSlot"])
    ttl = fleet_object(installed)["spec"].get("cache", {}).get("ttlSeconds", 300)
    with consumers.load() as load, PhaseLog(installed) as log:
        time.sleep(3)
        started = start_rollout(
            installed, {"cache": {"ttlSeconds": ttl + 2}, "strategy": blue_green(autoPromote=False)}
        )
        wait_phase(installed, "Analyzing")

        def passed() -> dict[str, Any] | None:
            rollout = rollout_of(installed)
            analysis = rollout.get("analysis") or {}
            return rollout if rollout.get("phase") == "Analyzing" and analysis.get("passed") is True else None

        waiting = k.eventually(
            passed, ROLLOUT_BOUND, "the analysis passed, waiting for a promotion", interval=0.5
        )
        time.sleep(ANALYSIS_SECONDS / 3)  # no promotion without the annotation
        held = rollout_of(installed)
        assert (held["phase"], held["activeSlot"]) == ("Analyzing", active), held
        assert held["analysis"]["requests"] >= MIN_REQUESTS, held
        assert "promote" in held["message"], held  # it says what it waits for
        assert selected_slot(installed, FLEET) == active
        promote_at = time.monotonic()
        annotate(installed, PROMOTE)

        k.eventually(
            lambda: selected_slot(installed, FLEET) == preview,
            120,
            f"the main Service switched to {preview} by the annotation",
            interval=0.5,
        )
        time_to_promote = time.monotonic() - started
        promoted_after_annotation = time.monotonic() - promote_at
        k.eventually(lambda: promoted_to(installed, preview), 120, f"Stable on {preview}", interval=0.5)
        k.eventually(lambda: annotation_removed(installed, PROMOTE), 60, f"{PROMOTE} removed once acted on")

        # A second change, aborted by hand while it is analysed: the new active slot stays.
        k.eventually(lambda: scaled_to_zero(installed, active), SCALE_DOWN_DELAY + 120, f"{active} at 0")
        restarted = start_rollout(installed, {"cache": {"ttlSeconds": ttl + 3}})
        wait_phase(installed, "Analyzing")
        annotate(installed, ABORT)
        aborted = wait_phase(installed, "Aborted", 120)
        time_to_abort = time.monotonic() - restarted
        assert aborted["activeSlot"] == preview, aborted
        assert aborted_because(installed) == "AbortRequested"
        assert selected_slot(installed, FLEET) == preview
        k.eventually(lambda: scaled_to_zero(installed, active), SCALE_DOWN_DELAY + 120, f"{active} at 0")
        k.eventually(lambda: annotation_removed(installed, ABORT), 60, f"{ABORT} removed once acted on")
        time.sleep(3)
    figures(
        "manual promote and abort",
        load,
        time_to_promote=time_to_promote,
        promoted_after_annotation=promoted_after_annotation,
        time_to_abort=time_to_abort,
    )
    print(f"[e2e] phases: {log.phases}; waiting: {waiting.get('message')}; aborted: {aborted.get('message')}")
    assert in_order(log.phases, "Progressing", "Analyzing", "Stable", "Progressing", "Analyzing", "Aborted")
    no_failures(load)
