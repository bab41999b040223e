"""The blue/green state machine (``controller.rollout.advance``) and its driver, on observed Deployments.

``advance`` is pure: each test builds the slots' Deployments as the watch would show them and
checks the next state, what is rendered, and what is kept as it is. The driver's tests use a
scripted verdict source in place of ``weather_operator.analysis.Analysis`` (its own tests are
H2's) and pre-filled child memory, so that no API read happens.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pytest

from weather_operator import status
from weather_operator.api import resolve, weatherproxy
from weather_operator.controller import children, rollout
from weather_operator.render import deployment, names
from weather_operator.render import fleet as fleet_

Phase = weatherproxy.RolloutPhase
T0 = datetime.datetime(2026, 12, 8, 1, 0, tzinfo=datetime.UTC)
OLD, NEW, NEWER = "aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb", "cccccccccccccccc"


def spec(strategy: dict[str, Any] | None = None, **extra: Any) -> Any:
    body = {
        "environment": "production",
        "replicas": 2,
        "autoscaling": {"enabled": False},
        "strategy": strategy if strategy is not None else {"type": "BlueGreen"},
        **extra,
    }
    return resolve.effective(weatherproxy.WeatherProxySpec.model_validate(body), default_image="img:1")


BG = spec(
    {
        "type": "BlueGreen",
        "blueGreen": {
            "scaleDownDelaySeconds": 30,
            "progressDeadlineSeconds": 300,
            "analysis": {"durationSeconds": 60},
        },
    }
)


def dep(template: str | None, replicas: int, *, ready: int | None = None) -> dict[str, Any]:
    """A Deployment as ``children.workload_view`` keeps it; ``ready`` defaults to all of them."""
    up = replicas if ready is None else ready
    annotations = {deployment.TEMPLATE_HASH_ANNOTATION: template} if template else {}
    return {
        "kind": "Deployment",
        "metadata": {"name": "x", "generation": 2},
        "spec": {"replicas": replicas, "template": {"metadata": {"annotations": annotations}}},
        "status": {
            "observedGeneration": 2,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "availableReplicas": up,
            "readyReplicas": up,
        },
    }


def observed(
    *,
    blue: dict[str, Any] | None = None,
    green: dict[str, Any] | None = None,
    single: dict[str, Any] | None = None,
    template: str = NEW,
    now: datetime.datetime = T0,
    annotations: dict[str, str] | None = None,
    full_size: int = 2,
) -> rollout.Observed:
    return rollout.Observed(
        single=single,
        slots={"blue": blue, "green": green},
        template=template,
        config_hash="cfg",
        full_size=full_size,
        annotations=annotations or {},
        now=now,
    )


def state(phase: Phase, **fields: Any) -> rollout.State:
    base: dict[str, Any] = {
        "strategy": weatherproxy.StrategyType.BLUE_GREEN,
        "phase": phase,
        "active": "blue",
        "preview": "green",
        "template": NEW,
        "started_at": T0,
    }
    return rollout.State(**{**base, **fields})


def later(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


@dataclasses.dataclass
class FakeVerdict:
    passed: bool | None
    requests: int = 120
    error_ratio: float | None = 0.0
    p95_seconds: float | None = 0.05
    message: str = ""


def rendered(step: rollout.Step) -> dict[str | None, int | None]:
    return {form.slot: form.replicas for form in step.workloads.rendered}


# --- Stable, and a new template -----------------------------------------------------------------------


def test_a_new_fleet_is_stable_on_blue_with_green_idle() -> None:
    step = rollout.advance(None, BG, observed())
    assert step.state is not None
    assert (step.state.phase, step.state.active, step.state.preview) == (Phase.STABLE, "blue", "green")
    assert rendered(step) == {"blue": None, "green": 0}
    assert step.workloads.active == "blue"
    assert step.workloads.preview == "green"


def test_a_new_template_starts_the_other_slot_at_full_size_and_keeps_the_active_one() -> None:
    stable = state(Phase.STABLE, template=OLD, started_at=None)
    step = rollout.advance(stable, BG, observed(blue=dep(OLD, 2), green=dep(OLD, 0), full_size=3))
    assert step.state is not None
    assert step.state.phase is Phase.PROGRESSING
    assert step.state.template == NEW
    assert step.state.started_at == T0
    assert rendered(step) == {"green": 3}
    assert step.workloads.kept == frozenset({"blue"})
    assert step.workloads.active == "blue"  # the Service, HPA and PDB stay on the active slot
    assert [e[1] for e in step.events] == ["RolloutStarted"]


def test_the_same_template_keeps_rendering_the_active_slot() -> None:
    stable = state(Phase.STABLE, template=NEW, started_at=None)
    step = rollout.advance(stable, BG, observed(blue=dep(NEW, 2), green=dep(NEW, 0)))
    assert step.state is not None
    assert step.state.phase is Phase.STABLE
    assert rendered(step) == {"blue": None, "green": 0}
    assert not step.events


# --- pass -> promote -> scale down ------------------------------------------------------------------


def test_a_ready_candidate_is_analysed() -> None:
    progressing = state(Phase.PROGRESSING)
    step = rollout.advance(progressing, BG, observed(blue=dep(OLD, 2), green=dep(NEW, 2)))
    assert step.state is not None
    assert step.state.phase is Phase.ANALYZING
    assert step.start_analysis
    assert step.recheck is not None
    assert rendered(step) == {"green": 2}


def test_a_candidate_not_ready_yet_waits_until_the_deadline() -> None:
    progressing = state(Phase.PROGRESSING)
    step = rollout.advance(progressing, BG, observed(blue=dep(OLD, 2), green=dep(NEW, 2, ready=1)))
    assert step.state is not None
    assert step.state.phase is Phase.PROGRESSING
    assert step.recheck == 300.0


def test_an_undecided_analysis_goes_on() -> None:
    analysing = state(Phase.ANALYZING)
    step = rollout.advance(
        analysing, BG, observed(blue=dep(OLD, 2), green=dep(NEW, 2), now=later(20)), FakeVerdict(None, 12)
    )
    assert step.state is not None
    assert step.state.phase is Phase.ANALYZING
    assert step.state.analysis == {"requests": 12, "errorRatio": 0.0, "p95Seconds": 0.05}
    assert step.recheck == rollout.step_interval(BG.strategy.blue_green.analysis)


def test_a_passed_analysis_promotes_and_the_old_slot_goes_after_the_delay() -> None:
    analysing = state(Phase.ANALYZING)
    obs = observed(blue=dep(OLD, 2), green=dep(NEW, 2), now=later(70))
    step = rollout.advance(analysing, BG, obs, FakeVerdict(True))
    assert step.state is not None
    assert step.state.phase is Phase.PROMOTING
    assert (step.state.active, step.state.preview) == ("green", "blue")
    assert step.state.analysis == {"requests": 120, "errorRatio": 0.0, "p95Seconds": 0.05, "passed": True}
    assert step.workloads.active == "green"
    assert rendered(step) == {"green": None}
    assert step.workloads.kept == frozenset({"blue"})  # still running: open connections drain
    assert step.workloads.preview == "blue"  # <fleet>-preview stays (on the old slot)
    assert step.state.scale_down_at == later(100)
    assert step.recheck == 30.0

    waiting = rollout.advance(step.state, BG, dataclasses.replace(obs, now=later(99)))
    assert waiting.state == step.state
    assert waiting.workloads.kept == frozenset({"blue"})

    done = rollout.advance(step.state, BG, dataclasses.replace(obs, now=later(100)))
    assert done.state is not None
    assert (done.state.phase, done.state.active, done.state.preview) == (Phase.STABLE, "green", "blue")
    assert rendered(done) == {"green": None, "blue": 0}
    assert [e[1] for e in done.events] == ["RolloutScaledDown"]


def test_the_hpa_takes_over_the_promoted_slot_count() -> None:
    autoscaled = spec({"type": "BlueGreen"}, autoscaling={"enabled": True, "minReplicas": 2})
    analysing = state(Phase.ANALYZING)
    step = rollout.advance(
        analysing, autoscaled, observed(blue=dep(OLD, 4), green=dep(NEW, 4)), FakeVerdict(True)
    )
    assert step.handoff
    assert rendered(step) == {"green": None}  # no replica count: the HPA's


def test_a_candidate_starts_with_what_the_hpa_runs_now() -> None:
    autoscaled = spec({"type": "BlueGreen"}, autoscaling={"enabled": True, "minReplicas": 2})
    assert rollout.full_size(autoscaled, dep(OLD, 5)) == 5
    assert rollout.full_size(autoscaled, None) == 2
    assert rollout.full_size(BG, dep(OLD, 5)) == 2


# --- aborts ---------------------------------------------------------------------------------------------


def test_a_failed_analysis_aborts_and_the_active_slot_is_never_touched() -> None:
    analysing = state(Phase.ANALYZING)
    verdict = FakeVerdict(False, 80, 0.4, message="error ratio 0.4 > 0.01")
    step = rollout.advance(analysing, BG, observed(blue=dep(OLD, 2), green=dep(NEW, 2)), verdict)
    assert step.state is not None
    assert step.state.phase is Phase.ABORTED
    assert step.state.reason == status.ROLLOUT_ANALYSIS_FAILED
    assert step.state.aborted_template == NEW
    assert "error ratio 0.4" in step.state.message
    assert step.workloads.active == "blue"
    assert step.workloads.kept == frozenset({"blue"})
    assert rendered(step) == {"green": 0}
    assert step.events[0][:2] == ("Warning", "RolloutAborted")


def test_a_candidate_not_ready_by_the_deadline_is_aborted() -> None:
    progressing = state(Phase.PROGRESSING)
    obs = observed(blue=dep(OLD, 2), green=dep(NEW, 2, ready=0), now=later(300))
    step = rollout.advance(progressing, BG, obs)
    assert step.state is not None
    assert step.state.phase is Phase.ABORTED
    assert step.state.reason == status.ROLLOUT_DEADLINE_EXCEEDED
    assert rendered(step) == {"green": 0}
    assert step.workloads.kept == frozenset({"blue"})


def test_an_aborted_template_is_not_tried_again_but_a_new_one_is() -> None:
    aborted = state(Phase.ABORTED, aborted_template=NEW, reason=status.ROLLOUT_ANALYSIS_FAILED)
    same = rollout.advance(aborted, BG, observed(blue=dep(OLD, 2), green=dep(NEW, 0), now=later(500)))
    assert same.state is not None
    assert same.state.phase is Phase.ABORTED
    assert rendered(same) == {"green": 0}

    newer = rollout.advance(aborted, BG, observed(blue=dep(OLD, 2), green=dep(NEW, 0), template=NEWER))
    assert newer.state is not None
    assert newer.state.phase is Phase.PROGRESSING
    assert newer.state.template == NEWER
    assert rendered(newer) == {"green": 2}


def test_the_active_template_restored_after_an_abort_is_stable_at_once() -> None:
    aborted = state(Phase.ABORTED, aborted_template=NEW, reason=status.ROLLOUT_ANALYSIS_FAILED)
    step = rollout.advance(aborted, BG, observed(blue=dep(OLD, 2), green=dep(NEW, 0), template=OLD))
    assert step.state is not None
    assert (step.state.phase, step.state.active) == (Phase.STABLE, "blue")
    assert rendered(step) == {"blue": None, "green": 0}


def test_a_template_change_during_the_analysis_restarts_the_rollout_or_cancels_it() -> None:
    analysing = state(Phase.ANALYZING)
    obs = observed(blue=dep(OLD, 2), green=dep(NEW, 2), template=NEWER, now=later(40))
    again = rollout.advance(analysing, BG, obs)
    assert again.state is not None
    assert (again.state.phase, again.state.template, again.state.started_at) == (
        Phase.PROGRESSING,
        NEWER,
        later(40),
    )
    back = rollout.advance(analysing, BG, dataclasses.replace(obs, template=OLD))
    assert back.state is not None
    assert back.state.phase is Phase.STABLE
    assert rendered(back) == {"blue": None, "green": 0}


# --- annotations ----------------------------------------------------------------------------------------


def test_the_abort_annotation_aborts_and_is_removed() -> None:
    obs = observed(
        blue=dep(OLD, 2), green=dep(NEW, 2, ready=0), annotations={rollout.ABORT_ANNOTATION: "true"}
    )
    step = rollout.advance(state(Phase.PROGRESSING), BG, obs)
    assert step.state is not None
    assert step.state.phase is Phase.ABORTED
    assert step.state.reason == status.ROLLOUT_ABORT_REQUESTED
    assert step.acted_on == (rollout.ABORT_ANNOTATION,)


def test_the_promote_annotation_skips_the_analysis_once_the_candidate_is_ready() -> None:
    annotations = {rollout.PROMOTE_ANNOTATION: "true"}
    not_ready = observed(blue=dep(OLD, 2), green=dep(NEW, 2, ready=1), annotations=annotations)
    waiting = rollout.advance(state(Phase.PROGRESSING), BG, not_ready)
    assert waiting.state is not None
    assert waiting.state.phase is Phase.PROGRESSING
    assert waiting.acted_on == ()  # kept until acted on

    ready = observed(blue=dep(OLD, 2), green=dep(NEW, 2), annotations=annotations)
    step = rollout.advance(state(Phase.PROGRESSING), BG, ready)
    assert step.state is not None
    assert (step.state.phase, step.state.active) == (Phase.PROMOTING, "green")
    assert step.acted_on == (rollout.PROMOTE_ANNOTATION,)


def test_the_promote_annotation_finishes_an_analysis() -> None:
    obs = observed(blue=dep(OLD, 2), green=dep(NEW, 2), annotations={rollout.PROMOTE_ANNOTATION: "true"})
    step = rollout.advance(state(Phase.ANALYZING), BG, obs, FakeVerdict(None))
    assert step.state is not None
    assert step.state.phase is Phase.PROMOTING


def test_without_auto_promote_a_passed_analysis_waits_for_the_annotation() -> None:
    manual = spec({"type": "BlueGreen", "blueGreen": {"autoPromote": False}})
    obs = observed(blue=dep(OLD, 2), green=dep(NEW, 2), now=later(70))
    step = rollout.advance(state(Phase.ANALYZING), manual, obs, FakeVerdict(True))
    assert step.state is not None
    assert step.state.phase is Phase.ANALYZING
    assert step.state.analysis is not None
    assert step.state.analysis["passed"] is True
    conditions = status.rollout_conditions(step.state.to_status())
    assert (conditions[0].type, conditions[0].reason) == ("RolloutProgressing", "AwaitingPromotion")
    # No deadline while it waits for a person.
    still = rollout.advance(step.state, manual, dataclasses.replace(obs, now=later(10_000)))
    assert still.state is not None
    assert still.state.phase is Phase.ANALYZING
    promoted = rollout.advance(
        step.state, manual, dataclasses.replace(obs, annotations={rollout.PROMOTE_ANNOTATION: "true"})
    )
    assert promoted.state is not None
    assert promoted.state.phase is Phase.PROMOTING


def test_an_annotation_with_nothing_in_progress_is_removed_with_a_warning() -> None:
    stable = state(Phase.STABLE, template=NEW)
    obs = observed(blue=dep(NEW, 2), green=dep(NEW, 0), annotations={rollout.PROMOTE_ANNOTATION: "true"})
    step = rollout.advance(stable, BG, obs)
    assert step.acted_on == (rollout.PROMOTE_ANNOTATION,)
    assert step.events[0][:2] == ("Warning", "RolloutAnnotationIgnored")


# --- restart: the state is the status -------------------------------------------------------------------


@pytest.mark.parametrize(
    "saved",
    [
        state(Phase.PROGRESSING),
        state(Phase.ANALYZING, analysis={"requests": 3, "errorRatio": 0.0}),
        state(Phase.PROMOTING, active="green", preview="blue", scale_down_at=later(30), started_at=None),
        state(Phase.ABORTED, aborted_template=NEW, reason=status.ROLLOUT_DEADLINE_EXCEEDED, message="x"),
    ],
    ids=lambda s: s.phase.value,
)
def test_the_state_survives_a_restart_through_the_status(saved: rollout.State) -> None:
    written = status.through_model(weatherproxy.WeatherProxyStatus, {"rollout": saved.to_status()})
    stored = {k: v for k, v in written["rollout"].items() if v is not None}  # the API server drops nulls
    assert rollout.State.from_status(stored) == saved
    obs = observed(blue=dep(OLD, 2), green=dep(NEW, 2), now=later(10))
    assert rollout.advance(rollout.State.from_status(stored), BG, obs) == rollout.advance(saved, BG, obs)


def test_a_lost_status_is_rebuilt_from_the_slot_the_service_selects() -> None:
    obs = observed(blue=dep(OLD, 2), green=dep(NEW, 2), template=NEW)
    step = rollout.advance(None, BG, dataclasses.replace(obs, service_slot="green"))
    assert step.state is not None
    assert (step.state.phase, step.state.active) == (Phase.STABLE, "green")
    assert rendered(step) == {"green": None, "blue": 0}


# --- switching strategy on a live fleet -----------------------------------------------------------------


def test_rolling_update_to_blue_green_brings_blue_up_before_the_single_deployment_goes() -> None:
    single = dep(None, 2)
    start = rollout.advance(None, BG, observed(single=single))
    assert start.state is not None
    assert (start.state.phase, start.state.active, start.state.preview) == (Phase.PROGRESSING, None, "blue")
    assert rendered(start) == {"blue": 2}
    assert start.workloads.kept == frozenset({None})
    assert start.workloads.active is None  # the Service still selects every proxy pod

    up = rollout.advance(start.state, BG, observed(single=single, blue=dep(NEW, 2), now=later(20)))
    assert up.state is not None
    assert (up.state.phase, up.state.active) == (Phase.PROMOTING, "blue")
    assert up.workloads.active == "blue"
    assert up.workloads.kept == frozenset({None})

    done = rollout.advance(up.state, BG, observed(single=single, blue=dep(NEW, 2), now=later(60)))
    assert done.state is not None
    assert done.state.phase is Phase.STABLE
    assert None not in done.workloads.forms()  # the single Deployment is deleted now


def test_blue_green_to_rolling_update_brings_the_single_deployment_up_before_the_slots_go() -> None:
    rolling = spec({"type": "RollingUpdate"})
    stable = state(Phase.STABLE, started_at=None)
    start = rollout.advance(stable, rolling, observed(blue=dep(NEW, 2), green=dep(NEW, 0)))
    assert start.state is not None
    assert (start.state.phase, start.state.active) == (Phase.PROGRESSING, "blue")
    assert rendered(start) == {None: 2}
    assert start.workloads.kept == frozenset({"blue"})
    assert start.workloads.active == "blue"

    single = dep(None, 2)
    single["spec"]["template"]["metadata"]["annotations"] = {"weatherproxy.dev/config-hash": "cfg"}
    up = rollout.advance(start.state, rolling, observed(single=single, blue=dep(NEW, 2), now=later(5)))
    assert up.state is not None
    assert (up.state.phase, up.state.active, up.state.preview) == (Phase.PROMOTING, None, "blue")
    assert up.workloads.active is None
    assert up.workloads.kept == frozenset({"blue"})

    done = rollout.advance(up.state, rolling, observed(single=single, now=later(40)))
    assert done.state is None  # status.rollout is cleared
    assert done.workloads.blue_green  # the slots are listed as unwanted
    assert done.workloads.forms() == {None}


def test_a_rolling_update_fleet_that_never_was_blue_green_has_no_rollout() -> None:
    assert rollout.advance(None, spec({"type": "RollingUpdate"}), observed()).workloads == fleet_.Workloads()


# --- the driver: a scripted verdict source in place of the analysis -------------------------------------


class ScriptedAnalysis:
    """Stands in for ``weather_operator.analysis.Analysis``: hands out verdicts from a list."""

    def __init__(self, verdicts: list[FakeVerdict]) -> None:
        self.verdicts = verdicts
        self.started = self.closed = False

    async def start(self) -> None:
        self.started = True

    async def step(self) -> FakeVerdict:
        return self.verdicts.pop(0)

    async def aclose(self) -> None:
        self.closed = True


class Api:
    """Answers the driver's reads of pods and Secrets (everything else is in the child memory)."""

    async def list(self, kind: Any, namespace: str, selector: str, limit: int) -> list[dict[str, Any]]:
        assert f"{names.SLOT_LABEL}=green" in selector
        ready = {"type": "Ready", "status": "True"}
        return [{"metadata": {}, "status": {"podIP": f"10.0.0.{i}", "conditions": [ready]}} for i in (1, 2)]

    async def get(self, kind: Any, namespace: str, name: str) -> None:
        return None


@dataclasses.dataclass
class Connection:
    api: Api = dataclasses.field(default_factory=Api)


def _inputs(effective: Any) -> fleet_.FleetInputs:
    from weather_proxy import config

    return fleet_.FleetInputs(
        name="paris",
        namespace="weather",
        spec=effective,
        keys=config.KeysFile(keys=[]),
        monitoring_available=False,
    )


async def test_the_driver_resumes_an_analysis_after_a_restart_and_promotes_on_its_verdict() -> None:
    inputs = _inputs(BG)
    template = fleet_.pod_template_hash(inputs)
    memory = children.ChildMemory()
    memory.workloads = {"Deployment/paris-blue": dep(OLD, 2), "Deployment/paris-green": dep(template, 2)}
    memory.absent = {"Deployment/paris"}
    made: list[tuple[list[str], ScriptedAnalysis]] = []
    servers: list[str | None] = []

    def factory(
        spec_: Any, urls: list[str], key: str, ca: bytes | None, server: str | None
    ) -> ScriptedAnalysis:
        analysis = ScriptedAnalysis([FakeVerdict(None), FakeVerdict(True)])
        made.append((urls, analysis))
        servers.append(server)
        return analysis

    driver = rollout.Rollouts(Connection(), children.Children(Connection()), factory)  # type: ignore[arg-type]
    running = rollout.RolloutMemory()
    body = {"metadata": {"name": "paris", "namespace": "weather"}}
    # The status a previous operator process wrote: Analyzing, its analysis lost with it.
    saved = {"rollout": state(Phase.ANALYZING, template=template).to_status()}

    first = await driver.step(body, BG, memory, running, inputs, saved, later(10), "smoke")
    assert first is not None
    assert first.state is not None
    assert first.state.phase is Phase.ANALYZING
    # production serves HTTPS: the pods' own port, their certificate checked for the Service's name.
    assert [urls for urls, _ in made] == [["https://10.0.0.1:8443", "https://10.0.0.2:8443"]]
    assert servers == ["paris.weather.svc"]
    assert made[0][1].started

    saved = {"rollout": first.state.to_status()}
    second = await driver.step(body, BG, memory, running, inputs, saved, later(20), "smoke")
    assert second is not None
    assert second.state is not None
    assert second.state.phase is Phase.ANALYZING  # undecided
    saved = {"rollout": second.state.to_status()}
    third = await driver.step(body, BG, memory, running, inputs, saved, later(80), "smoke")
    assert third is not None
    assert third.state is not None
    assert (third.state.phase, third.state.active) == (Phase.PROMOTING, "green")
    assert made[0][1].closed  # the analysis is closed once it decided
    assert len(made) == 1


# --- the Kopf adapter: an annotation is a reconcile, although the generation did not move --------------


async def test_a_rollout_annotation_requests_a_reconcile_without_a_new_generation() -> None:
    from weather_operator import settings
    from weather_operator.api import constants
    from weather_operator.controller import indexes, requests, runtime, workqueue
    from weather_operator.handlers import fleet as fleet_handlers

    controller = runtime.Controller(settings.OperatorSettings(), indexes.Indexes({}, {}))
    controller.start = lambda: None  # type: ignore[method-assign]
    memo = {runtime.MEMO_KEY: controller}
    request = workqueue.Request(requests.WEATHERPROXY, "ns", "paris")
    body: dict[str, Any] = {
        "apiVersion": constants.API_VERSION,
        "kind": constants.WEATHERPROXY_KIND,
        "metadata": {"name": "paris", "namespace": "ns", "uid": "u", "generation": 3},
    }
    await fleet_handlers.weatherproxy_event(event={"type": "ADDED"}, body=body, memo=memo)
    assert controller.queue.pending(request)
    added = controller.queue.added
    await fleet_handlers.weatherproxy_event(event={"type": "MODIFIED"}, body=body, memo=memo)
    assert controller.queue.added == added  # a metadata change: nothing to do
    annotated = {
        **body,
        "metadata": {**body["metadata"], "annotations": {rollout.PROMOTE_ANNOTATION: "true"}},
    }
    await fleet_handlers.weatherproxy_event(event={"type": "MODIFIED"}, body=annotated, memo=memo)
    assert controller.queue.added == added + 1
    await controller.close()


def test_rollout_conditions_name_why_a_rollout_was_aborted() -> None:
    for reason in (
        status.ROLLOUT_ANALYSIS_FAILED,
        status.ROLLOUT_DEADLINE_EXCEEDED,
        status.ROLLOUT_ABORT_REQUESTED,
    ):
        aborted = state(Phase.ABORTED, reason=reason, message="why").to_status()
        progressing, aborted_condition = status.rollout_conditions(aborted)
        assert (progressing.status, progressing.reason) == ("False", "Aborted")
        assert (aborted_condition.status, aborted_condition.reason, aborted_condition.message) == (
            "True",
            reason,
            "why",
        )
    assert status.rollout_conditions(None) == []
