"""Blue/green rollouts of a fleet's proxy pods (``spec.strategy.type: BlueGreen``; docs/rollouts.md).

Two slots, the Deployments ``<fleet>-blue`` and ``<fleet>-green``. The Service ``<fleet>`` selects
the active slot's pods, ``<fleet>-preview`` the other slot's. A new pod template starts the
other slot at full size (the active one is not touched), the analysis (``weather_operator.analysis``)
reads the candidate's own metrics, and a pass moves the Service, the HPA and the PDB to it:

    Stable -> Progressing -> Analyzing -> Promoting -> Stable
                  |              |
                  +--> Aborted <-+   (analysis failed, not Ready by the deadline, or asked to)

Everything a restarted operator needs is in ``status.rollout`` (which slot is active, the
candidate's template hash, when the phase's clock started, when the old slot scales down, the
template last aborted): ``advance`` is a pure function of it, of the spec and of the slots'
Deployments as observed. Only a running analysis lives in memory (``RolloutMemory``); after a
restart it starts again from its beginning.

Switching strategy on a live fleet takes the same way without an analysis (the pod template
did not change): RollingUpdate to BlueGreen brings ``<fleet>-blue`` up beside ``<fleet>``,
moves the Service, then deletes ``<fleet>`` after ``scaleDownDelaySeconds``; back the other way
``<fleet>`` comes up, the Service drops the slot from its selector, then the slots go.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from weather_operator import analysis as analysis_
from weather_operator import apply, events, keys, status
from weather_operator.api import constants, effective, weatherproxy
from weather_operator.controller import children, connection
from weather_operator.render import deployment, names, tls
from weather_operator.render import fleet as fleet_

logger = logging.getLogger(__name__)

Phase = weatherproxy.RolloutPhase
PROMOTE_ANNOTATION = f"{constants.GROUP}/promote"
ABORT_ANNOTATION = f"{constants.GROUP}/abort"
ANNOTATIONS = (PROMOTE_ANNOTATION, ABORT_ANNOTATION)


# How often a running analysis is stepped (at most; a short analysis is stepped more often).
ANALYSIS_STEP_SECONDS = 5.0


def step_interval(analysis: effective.AnalysisSpec) -> float:
    return max(1.0, min(ANALYSIS_STEP_SECONDS, analysis.duration_seconds / 6))


# --- the analysis, as this module uses it (weather_operator.analysis) ---------------------------------


class Verdict(Protocol):
    @property
    def passed(self) -> bool | None: ...
    @property
    def requests(self) -> int: ...
    @property
    def error_ratio(self) -> float | None: ...
    @property
    def p95_seconds(self) -> float | None: ...
    @property
    def message(self) -> str: ...


class Analysis(Protocol):
    async def start(self) -> None: ...
    async def step(self) -> Verdict: ...
    async def aclose(self) -> None: ...


# (the analysis spec, the candidate pods' base URLs, the smoke key, the CA to trust and the name its
# certificate carries, or None over plain HTTP)
AnalysisFactory = Callable[[effective.AnalysisSpec, list[str], str, bytes | None, str | None], Analysis]


def default_analysis(
    spec: effective.AnalysisSpec,
    urls: list[str],
    smoke_key: str,
    tls_ca: bytes | None,
    server_name: str | None,
) -> Analysis:
    """``weather_operator.analysis.Analysis`` of the candidate pods."""
    targets = [analysis_.Target(url=url) for url in urls]
    return analysis_.Analysis(spec, targets, smoke_key=smoke_key, tls_ca=tls_ca, server_name=server_name)


@dataclasses.dataclass
class RolloutMemory:
    """The analysis running for one fleet (lost at a restart: it then starts again)."""

    analysis: Analysis | None = None
    key: tuple[str, str] | None = None  # (slot, template) it analyses

    async def close(self) -> None:
        if self.analysis is not None:
            try:
                await self.analysis.aclose()
            except Exception:  # a failing close must not stop the rollout
                logger.exception("closing an analysis failed")
        self.analysis, self.key = None, None


# --- the state (status.rollout) ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class State:
    """``status.rollout``, read and written."""

    strategy: effective.StrategyType
    phase: Phase
    active: str | None  # None: the single Deployment (RollingUpdate's form)
    preview: str | None  # the candidate (Progressing, Analyzing, Aborted), the old slot (Promoting)
    template: str | None = None
    aborted_template: str | None = None
    started_at: datetime.datetime | None = None
    scale_down_at: datetime.datetime | None = None
    analysis: dict[str, Any] | None = None  # camelCase: requests, errorRatio, p95Seconds, passed
    message: str = ""
    reason: str | None = None  # why it was aborted (RolloutAborted's reason)

    @classmethod
    def from_status(cls, rollout: Mapping[str, Any] | None) -> State | None:
        if not rollout or not rollout.get("phase"):
            return None
        try:
            return cls(
                strategy=effective.StrategyType(
                    rollout.get("strategy") or effective.StrategyType.BLUE_GREEN.value
                ),
                phase=Phase(rollout["phase"]),
                active=rollout.get("activeSlot"),
                preview=rollout.get("previewSlot"),
                template=rollout.get("template"),
                aborted_template=rollout.get("abortedTemplate"),
                started_at=keys.parse_time(rollout.get("startedAt")),
                scale_down_at=keys.parse_time(rollout.get("scaleDownAt")),
                analysis=dict(rollout["analysis"]) if rollout.get("analysis") else None,
                message=str(rollout.get("message") or ""),
                reason=rollout.get("reason"),
            )
        except ValueError:
            return None  # written by another version: derived again from the objects

    def to_status(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy.value,
            "activeSlot": self.active,
            "previewSlot": self.preview,
            "phase": self.phase.value,
            "analysis": self.analysis,
            "message": self.message[:1024],
            "template": self.template,
            "abortedTemplate": self.aborted_template,
            "startedAt": keys.format_time(self.started_at) if self.started_at else None,
            "scaleDownAt": keys.format_time(self.scale_down_at) if self.scale_down_at else None,
            "reason": self.reason,
        }


# --- one step -----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Observed:
    """What ``advance`` reads besides the state: the proxy Deployments as watched (None: absent)."""

    single: Mapping[str, Any] | None
    slots: Mapping[str, Mapping[str, Any] | None]
    template: str  # the hash of the pod template the spec renders now
    config_hash: str  # of the config.yaml the spec renders now (the single Deployment's readiness)
    full_size: int  # replicas a candidate starts with: what the active form runs now
    annotations: Mapping[str, str]
    now: datetime.datetime
    # The slot the Service <fleet> selects, read only when status.rollout is missing (None: no slot).
    service_slot: str | None = None

    def form(self, slot: str | None) -> Mapping[str, Any] | None:
        return self.single if slot is None else self.slots.get(slot)


@dataclasses.dataclass(frozen=True)
class Step:
    """What one reconcile does about the rollout; ``state`` None: no rollout state (RollingUpdate)."""

    state: State | None
    workloads: fleet_.Workloads
    events: tuple[tuple[str, str, str], ...] = ()  # (Normal|Warning, reason, message)
    acted_on: tuple[str, ...] = ()  # annotations to remove from the WeatherProxy
    start_analysis: bool = False
    # The HPA takes over the replica count of the newly active form: its count is handed over first.
    handoff: bool = False
    handoff_replicas: int | None = None  # set by ``Rollouts.step``: the count handed to the HPA
    recheck: float | None = None  # seconds until the next reconcile the rollout needs by itself


def template_of(workload: Mapping[str, Any] | None) -> str | None:
    annotations = ((workload or {}).get("spec", {}).get("template", {}).get("metadata") or {}).get(
        "annotations"
    ) or {}
    value = annotations.get(deployment.TEMPLATE_HASH_ANNOTATION)
    return str(value) if value is not None else None


def ready(workload: Mapping[str, Any] | None, want: int) -> bool:
    """Every one of ``want`` replicas runs the Deployment's current template and is available."""
    if workload is None or want < 1:
        return False
    st = workload.get("status") or {}
    generation = int((workload.get("metadata") or {}).get("generation") or 0)
    if int(st.get("observedGeneration") or 0) < generation:
        return False
    updated = int(st.get("updatedReplicas") or 0)
    return (
        updated >= want
        and int(st.get("replicas") or 0) == updated
        and int(st.get("availableReplicas") or 0) >= want
    )


def replicas_of(workload: Mapping[str, Any] | None) -> int | None:
    value = ((workload or {}).get("spec") or {}).get("replicas")
    return int(value) if value is not None else None


def full_size(spec: effective.EffectiveSpec, active: Mapping[str, Any] | None) -> int:
    """A candidate's replicas: what the active form runs (the HPA's count), at least the spec's floor."""
    floor = spec.autoscaling.min_replicas if spec.autoscaling.enabled else spec.replicas
    if not spec.autoscaling.enabled:
        return floor
    current = replicas_of(active)
    return max(floor, current if current is not None else floor)


def _single_ready(obs: Observed) -> bool:
    single = obs.single
    if single is None or not ready(single, obs.full_size):
        return False
    template = (single.get("spec", {}).get("template", {}).get("metadata") or {}).get("annotations") or {}
    return template.get(constants.CONFIG_HASH_ANNOTATION) == obs.config_hash


def advance(
    state: State | None,
    spec: effective.EffectiveSpec,
    obs: Observed,
    verdict: Verdict | None = None,
) -> Step:
    """The rollout's next state and what to render for it (pure)."""
    if spec.strategy.blue_green_enabled:
        return _blue_green(state, spec, obs, verdict)
    return _rolling_update(state, spec, obs)


def _seconds_until(moment: datetime.datetime | None, now: datetime.datetime) -> float:
    if moment is None:
        return 0.0
    return max(1.0, (moment - now).total_seconds())


def _rolling_update(state: State | None, spec: effective.EffectiveSpec, obs: Observed) -> Step:
    """RollingUpdate: the single Deployment; from slots, it comes up before they go."""
    bg = spec.strategy.blue_green
    if state is None or (state.active is None and state.phase is not Phase.PROMOTING):
        # Never blue/green, or a switch to it that never got a slot up: the single Deployment only
        # (a slot left over from it is deleted).
        done = fleet_.Workloads(blue_green=state is not None)
        return Step(state=None, workloads=done)
    now = obs.now
    rolling = effective.StrategyType.ROLLING_UPDATE
    if state.active is not None:
        # Bring the single Deployment up at full size beside the active slot, which keeps serving.
        old = state.active
        up = _single_ready(obs)
        if not up:
            progressing = State(
                strategy=rolling,
                phase=Phase.PROGRESSING,
                active=old,
                preview=None,
                template=obs.template,
                started_at=state.started_at if state.phase is Phase.PROGRESSING else now,
                message="switching to RollingUpdate: waiting for the single Deployment to be Ready",
            )
            events: tuple[tuple[str, str, str], ...] = ()
            if state.strategy is not rolling or state.phase is not Phase.PROGRESSING:
                events = (
                    ("Normal", "RolloutStarted", "switching to RollingUpdate: starting the Deployment"),
                )
            return Step(
                state=progressing,
                workloads=fleet_.Workloads(
                    active=old,
                    rendered=(fleet_.ProxyForm(None, obs.full_size),),
                    kept=frozenset({old}),
                    blue_green=True,
                ),
                events=events,
            )
        delay = bg.scale_down_delay_seconds
        promoting = State(
            strategy=rolling,
            phase=Phase.PROMOTING,
            active=None,
            preview=old,
            template=obs.template,
            scale_down_at=now + datetime.timedelta(seconds=delay),
            message=f"switched to RollingUpdate: slot {old} scales down in {delay}s",
        )
        return Step(
            state=promoting,
            workloads=fleet_.Workloads(
                active=None, rendered=(fleet_.ProxyForm(None),), kept=frozenset({old}), blue_green=True
            ),
            events=(("Normal", "RolloutPromoted", promoting.message),),
            handoff=spec.autoscaling.enabled,
            recheck=float(delay),
        )
    # Promoting to the single Deployment: the old slot goes after the delay.
    if state.scale_down_at is not None and obs.now < state.scale_down_at:
        kept = frozenset({state.preview} if state.preview else ())
        return Step(
            state=state,
            workloads=fleet_.Workloads(active=None, kept=kept, blue_green=True),
            recheck=_seconds_until(state.scale_down_at, obs.now),
        )
    return Step(
        state=None,
        workloads=fleet_.Workloads(blue_green=True),
        events=(("Normal", "RolloutScaledDown", "switched to RollingUpdate: the slots are deleted"),),
    )


def _initial(obs: Observed) -> State:
    """A BlueGreen fleet without a rollout state: a new fleet, or one switching from RollingUpdate."""
    blue = effective.StrategyType.BLUE_GREEN
    if obs.service_slot in names.SLOTS and obs.slots.get(obs.service_slot) is not None:
        # The status was lost (or never written): the Service tells which slot serves.
        slot = obs.service_slot
        return State(strategy=blue, phase=Phase.STABLE, active=slot, preview=names.other_slot(slot))
    if obs.single is not None:
        return State(strategy=blue, phase=Phase.PROGRESSING, active=None, preview=names.BLUE)
    for slot in names.SLOTS:  # a state lost: the slot serving the template, else blue
        if template_of(obs.slots.get(slot)) is not None and replicas_of(obs.slots.get(slot)) != 0:
            return State(strategy=blue, phase=Phase.STABLE, active=slot, preview=names.other_slot(slot))
    return State(strategy=blue, phase=Phase.STABLE, active=names.BLUE, preview=names.GREEN)


def _blue_green(
    state: State | None, spec: effective.EffectiveSpec, obs: Observed, verdict: Verdict | None
) -> Step:
    now, template = obs.now, obs.template
    if state is None or state.strategy is not effective.StrategyType.BLUE_GREEN:
        if state is not None and state.active is None and state.phase is Phase.PROMOTING:
            # Back to BlueGreen while the switch to RollingUpdate drained the slot: that slot again.
            state = State(
                strategy=effective.StrategyType.BLUE_GREEN,
                phase=Phase.PROGRESSING,
                active=None,
                preview=state.preview or names.BLUE,
            )
        elif state is not None and state.active is not None:
            # Back to BlueGreen before the single Deployment took over: the slot still serves.
            state = dataclasses.replace(
                state, strategy=effective.StrategyType.BLUE_GREEN, phase=Phase.STABLE, preview=None
            )
        else:
            state = _initial(obs)
            if state.phase is Phase.PROGRESSING:
                state = dataclasses.replace(
                    state, template=template, started_at=now, message="switching to BlueGreen"
                )
                return _migrating(state, spec, obs, starting=True)
    if state.active is None:
        return _migrating(state, spec, obs, starting=False)
    active = state.active
    preview = names.other_slot(active)
    active_template = template_of(obs.slots.get(active))
    annotations = {k for k in ANNOTATIONS if obs.annotations.get(k) == "true"}

    def stable(message: str, events: tuple[tuple[str, str, str], ...] = ()) -> Step:
        new = State(
            strategy=effective.StrategyType.BLUE_GREEN,
            phase=Phase.STABLE,
            active=active,
            preview=preview,
            template=template,
            aborted_template=state.aborted_template if state else None,
            message=message,
        )
        ignored = tuple(
            ("Warning", "RolloutAnnotationIgnored", f"{a}: no rollout in progress") for a in annotations
        )
        return Step(
            state=new,
            workloads=_workloads(active, preview, active_renders=True, preview_replicas=0),
            events=events + ignored,
            acted_on=tuple(sorted(annotations)),
        )

    def start(message: str) -> Step:
        new = State(
            strategy=effective.StrategyType.BLUE_GREEN,
            phase=Phase.PROGRESSING,
            active=active,
            preview=preview,
            template=template,
            aborted_template=state.aborted_template if state else None,
            started_at=now,
            message=message,
        )
        return _progressing(new, spec, obs, annotations, (("Normal", "RolloutStarted", message),))

    phase = state.phase
    if phase is Phase.PROMOTING:
        if state.scale_down_at is not None and now < state.scale_down_at:
            kept = frozenset(f for f in (state.preview, None) if obs.form(f) is not None)
            kept = frozenset(f for f in kept if f != active)
            return Step(
                state=state,
                workloads=fleet_.Workloads(
                    active=active,
                    rendered=(fleet_.ProxyForm(active),),
                    kept=kept,
                    preview=names.other_slot(active),
                    blue_green=True,
                ),
                recheck=_seconds_until(state.scale_down_at, now),
            )
        old = state.preview or "the single Deployment"
        return stable(
            f"promoted: slot {active} serves; slot {old} scaled down",
            (("Normal", "RolloutScaledDown", f"slot {old} scaled to 0 after the promotion to {active}"),),
        )
    if phase is Phase.STABLE:
        if active_template is None or active_template == template:
            return stable(f"slot {active} serves" if state.message == "" else state.message)
        if template == state.aborted_template:
            return _aborted(state, obs, annotations)
        return start(f"rolling out pod template {template} to slot {preview}")
    if phase is Phase.ABORTED:
        if active_template == template:
            return stable(f"the pod template is slot {active}'s again: nothing to roll out")
        if template != state.aborted_template:
            return start(f"rolling out pod template {template} to slot {preview} (after an abort)")
        return _aborted(state, obs, annotations)
    # Progressing or Analyzing.
    if template != state.template:
        if template == active_template:
            return stable(
                f"the pod template is slot {active}'s again: rollout to slot {preview} cancelled",
                (
                    (
                        "Normal",
                        "RolloutCancelled",
                        "the pod template changed back; the candidate is scaled down",
                    ),
                ),
            )
        return start(f"the pod template changed during the rollout: rolling out {template} to slot {preview}")
    if phase is Phase.PROGRESSING:
        return _progressing(state, spec, obs, annotations, ())
    return _analyzing(state, spec, obs, annotations, verdict)


def _workloads(
    active: str,
    preview: str,
    *,
    active_renders: bool,
    preview_replicas: int | None,
    rendered_preview: bool = True,
) -> fleet_.Workloads:
    rendered: list[fleet_.ProxyForm] = []
    kept: set[str | None] = set()
    if active_renders:
        rendered.append(fleet_.ProxyForm(active))
    else:
        kept.add(active)
    if rendered_preview:
        rendered.append(fleet_.ProxyForm(preview, preview_replicas))
    else:
        kept.add(preview)
    return fleet_.Workloads(
        active=active, rendered=tuple(rendered), kept=frozenset(kept), preview=preview, blue_green=True
    )


def _abort_reason(message: str) -> str:
    if message.startswith("aborted by"):
        return status.ROLLOUT_ABORT_REQUESTED
    if message.startswith("not Ready"):
        return status.ROLLOUT_DEADLINE_EXCEEDED
    return status.ROLLOUT_ANALYSIS_FAILED


def _abort(
    state: State, obs: Observed, annotations: set[str], reason_message: str, analysis: dict[str, Any] | None
) -> Step:
    assert state.active is not None
    new = dataclasses.replace(
        state,
        phase=Phase.ABORTED,
        reason=_abort_reason(reason_message),
        aborted_template=state.template,
        scale_down_at=None,
        analysis=analysis if analysis is not None else state.analysis,
        message=reason_message,
    )
    return Step(
        state=new,
        workloads=_workloads(
            state.active, names.other_slot(state.active), active_renders=False, preview_replicas=0
        ),
        events=(("Warning", "RolloutAborted", reason_message),),
        acted_on=tuple(sorted(annotations)),
    )


def _aborted(state: State, obs: Observed, annotations: set[str]) -> Step:
    """Aborted, and the spec still renders the aborted template: the active slot keeps serving."""
    assert state.active is not None
    ignored = tuple(
        ("Warning", "RolloutAnnotationIgnored", f"{a}: the rollout was aborted; change the pod template")
        for a in annotations
    )
    return Step(
        state=dataclasses.replace(state, phase=Phase.ABORTED),
        workloads=_workloads(
            state.active, names.other_slot(state.active), active_renders=False, preview_replicas=0
        ),
        events=ignored,
        acted_on=tuple(sorted(annotations)),
    )


def _promote(
    state: State, spec: effective.EffectiveSpec, obs: Observed, annotations: set[str], why: str
) -> Step:
    assert state.active is not None
    assert state.preview is not None
    delay = spec.strategy.blue_green.scale_down_delay_seconds
    new_active, old = state.preview, state.active
    new = dataclasses.replace(
        state,
        phase=Phase.PROMOTING,
        active=new_active,
        preview=old,
        started_at=None,
        scale_down_at=obs.now + datetime.timedelta(seconds=delay),
        message=f"promoted slot {new_active} ({why}); slot {old} scales down in {delay}s",
    )
    return Step(
        state=new,
        workloads=fleet_.Workloads(
            active=new_active,
            rendered=(fleet_.ProxyForm(new_active),),
            kept=frozenset({old}),
            preview=old,  # <fleet>-preview stays, on the slot being drained
            blue_green=True,
        ),
        events=(("Normal", "RolloutPromoted", new.message),),
        acted_on=tuple(sorted(annotations)),
        handoff=spec.autoscaling.enabled,
        recheck=float(max(1, delay)),
    )


def _deadline(state: State, spec: effective.EffectiveSpec) -> datetime.datetime | None:
    if state.started_at is None:
        return None
    return state.started_at + datetime.timedelta(seconds=spec.strategy.blue_green.progress_deadline_seconds)


def _progressing(
    state: State,
    spec: effective.EffectiveSpec,
    obs: Observed,
    annotations: set[str],
    events: tuple[tuple[str, str, str], ...],
) -> Step:
    assert state.active is not None
    assert state.preview is not None
    if ABORT_ANNOTATION in annotations:
        return _abort(state, obs, annotations, f"aborted by the {ABORT_ANNOTATION} annotation", None)
    candidate = obs.slots.get(state.preview)
    if ready(candidate, obs.full_size) and template_of(candidate) == state.template:
        if PROMOTE_ANNOTATION in annotations:
            return _promote(state, spec, obs, annotations, f"the {PROMOTE_ANNOTATION} annotation")
        message = f"slot {state.preview} is Ready: analysing it"
        new = dataclasses.replace(state, phase=Phase.ANALYZING, analysis=None, message=message)
        return Step(
            state=new,
            workloads=_workloads(
                state.active, state.preview, active_renders=False, preview_replicas=obs.full_size
            ),
            events=(*events, ("Normal", "RolloutAnalyzing", message)),
            start_analysis=True,
            recheck=step_interval(spec.strategy.blue_green.analysis),
        )
    deadline = _deadline(state, spec)
    if deadline is not None and obs.now >= deadline:
        seconds = spec.strategy.blue_green.progress_deadline_seconds
        return _abort(
            state,
            obs,
            annotations,
            f"not Ready within progressDeadlineSeconds ({seconds}s): slot {state.preview} scaled down",
            None,
        )
    if not state.message:
        state = dataclasses.replace(state, message=f"waiting for slot {state.preview} to be Ready")
    assert state.active is not None
    assert state.preview is not None
    # A promote annotation waits for Ready (it is not removed until acted on).
    return Step(
        state=state,
        workloads=_workloads(
            state.active, state.preview, active_renders=False, preview_replicas=obs.full_size
        ),
        events=events,
        recheck=_seconds_until(deadline, obs.now) if deadline is not None else None,
    )


def _figures(verdict: Verdict) -> dict[str, Any]:
    out: dict[str, Any] = {"requests": int(verdict.requests)}
    if verdict.error_ratio is not None:
        out["errorRatio"] = float(verdict.error_ratio)
    if verdict.p95_seconds is not None:
        out["p95Seconds"] = float(verdict.p95_seconds)
    if verdict.passed is not None:
        out["passed"] = bool(verdict.passed)
    return out


def _analyzing(
    state: State,
    spec: effective.EffectiveSpec,
    obs: Observed,
    annotations: set[str],
    verdict: Verdict | None,
) -> Step:
    assert state.active is not None
    assert state.preview is not None
    bg = spec.strategy.blue_green
    analysis = _figures(verdict) if verdict is not None else state.analysis
    passed = (analysis or {}).get("passed")
    if ABORT_ANNOTATION in annotations:
        return _abort(state, obs, annotations, f"aborted by the {ABORT_ANNOTATION} annotation", analysis)
    if PROMOTE_ANNOTATION in annotations:
        return _promote(
            dataclasses.replace(state, analysis=analysis),
            spec,
            obs,
            annotations,
            f"the {PROMOTE_ANNOTATION} annotation",
        )
    if passed is False:
        why = verdict.message if verdict is not None else state.message
        return _abort(state, obs, annotations, f"analysis failed: {why}", analysis)
    if passed is True and bg.auto_promote:
        return _promote(
            dataclasses.replace(state, analysis=analysis), spec, obs, annotations, "analysis passed"
        )
    workloads = _workloads(state.active, state.preview, active_renders=False, preview_replicas=obs.full_size)
    if passed is True:
        message = f"analysis passed: waiting for the {PROMOTE_ANNOTATION} annotation"
        events: tuple[tuple[str, str, str], ...] = ()
        if state.message != message:
            events = (("Normal", "RolloutAnalysisPassed", message),)
        return Step(
            state=dataclasses.replace(state, analysis=analysis, message=message),
            workloads=workloads,
            events=events,
        )
    deadline = _deadline(state, spec)
    if deadline is not None and obs.now >= deadline:
        seconds = bg.progress_deadline_seconds
        return _abort(
            state,
            obs,
            annotations,
            f"not Ready and analysed within progressDeadlineSeconds ({seconds}s): "
            f"slot {state.preview} scaled down",
            analysis,
        )
    message = f"analysing slot {state.preview}" + (
        f": {verdict.message}" if verdict is not None and verdict.message else ""
    )
    return Step(
        state=dataclasses.replace(state, analysis=analysis, message=message),
        workloads=workloads,
        recheck=step_interval(bg.analysis),
    )


def _migrating(state: State, spec: effective.EffectiveSpec, obs: Observed, *, starting: bool) -> Step:
    """RollingUpdate to BlueGreen: slot ``preview`` comes up beside the single Deployment, then serves."""
    slot = state.preview or names.BLUE
    events: tuple[tuple[str, str, str], ...] = ()
    if starting:
        events = (("Normal", "RolloutStarted", f"switching to BlueGreen: starting slot {slot}"),)
    if state.phase is Phase.ABORTED:
        if obs.template != state.aborted_template:
            state = dataclasses.replace(
                state, phase=Phase.PROGRESSING, template=obs.template, started_at=obs.now
            )
        else:
            return Step(
                state=state,
                workloads=fleet_.Workloads(
                    active=None,
                    rendered=(fleet_.ProxyForm(slot, 0),),
                    kept=frozenset({None}),
                    preview=slot,
                    blue_green=True,
                ),
            )
    if obs.single is None:
        # Nothing left to switch from (deleted meanwhile): the slot serves from now on.
        new = State(
            strategy=effective.StrategyType.BLUE_GREEN,
            phase=Phase.STABLE,
            active=slot,
            preview=names.other_slot(slot),
            template=obs.template,
            message=f"slot {slot} serves",
        )
        return Step(
            state=new,
            workloads=_workloads(slot, names.other_slot(slot), active_renders=True, preview_replicas=0),
            events=events,
        )
    candidate = obs.slots.get(slot)
    if ready(candidate, obs.full_size) and template_of(candidate) == obs.template:
        delay = spec.strategy.blue_green.scale_down_delay_seconds
        new = State(
            strategy=effective.StrategyType.BLUE_GREEN,
            phase=Phase.PROMOTING,
            active=slot,
            preview=None,
            template=obs.template,
            scale_down_at=obs.now + datetime.timedelta(seconds=delay),
            message=f"switched to BlueGreen: slot {slot} serves; the single Deployment goes in {delay}s",
        )
        return Step(
            state=new,
            workloads=fleet_.Workloads(
                active=slot,
                rendered=(fleet_.ProxyForm(slot),),
                kept=frozenset({None}),
                preview=names.other_slot(slot),
                blue_green=True,
            ),
            events=(*events, ("Normal", "RolloutPromoted", new.message)),
            handoff=spec.autoscaling.enabled,
            recheck=float(max(1, delay)),
        )
    deadline = _deadline(state, spec)
    if deadline is not None and obs.now >= deadline:
        seconds = spec.strategy.blue_green.progress_deadline_seconds
        message = f"not Ready within progressDeadlineSeconds ({seconds}s): slot {slot} scaled down"
        new = dataclasses.replace(
            state, phase=Phase.ABORTED, aborted_template=state.template, message=message
        )
        return Step(
            state=new,
            workloads=fleet_.Workloads(
                active=None,
                rendered=(fleet_.ProxyForm(slot, 0),),
                kept=frozenset({None}),
                preview=slot,
                blue_green=True,
            ),
            events=(*events, ("Warning", "RolloutAborted", message)),
        )
    if state.template != obs.template or state.started_at is None:
        state = dataclasses.replace(state, template=obs.template, started_at=obs.now)
    state = dataclasses.replace(state, message=f"switching to BlueGreen: waiting for slot {slot} to be Ready")
    return Step(
        state=state,
        workloads=fleet_.Workloads(
            active=None,
            rendered=(fleet_.ProxyForm(slot, obs.full_size),),
            kept=frozenset({None}),
            preview=slot,
            blue_green=True,
        ),
        events=events,
        recheck=_seconds_until(_deadline(state, spec), obs.now),
    )


# --- the driver: reads, the analysis, the hand-off ------------------------------------------------


async def analysis_inputs(
    api: apply.Cluster, namespace: str, name: str, spec: effective.EffectiveSpec, slot: str
) -> tuple[list[str], bytes | None, str | None]:
    """The candidate pods' base URLs, the CA their certificate chains to and the name it carries."""
    selector = ",".join(f"{k}={v}" for k, v in names.slot_selector_labels(name, slot).items())
    pods = await api.list(apply.POD, namespace, selector, 200)
    port = deployment.serving_port(spec)[1]
    scheme = "https" if spec.tls.enabled else "http"
    urls = sorted(
        f"{scheme}://{_host(pod['status']['podIP'])}:{port}"
        for pod in pods
        if _pod_ready(pod) and not pod["metadata"].get("deletionTimestamp")
    )
    if not spec.tls.enabled:
        return urls, None, None
    ca_secret = names.tls_ca_secret_name(name)
    if spec.tls.mode is not effective.TlsMode.MANAGED:
        ca_secret = tls.proxy_secret_name(name, spec.tls)  # cert-manager's or the user's: its ca.crt
    found = _secret_value(await api.get(apply.SECRET, namespace, ca_secret), names.CA_CERT_KEY)
    return urls, found.encode() if found else None, analysis_.tls_server_name(name, namespace)


def _host(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


def _pod_ready(pod: Mapping[str, Any]) -> bool:
    st = pod.get("status") or {}
    if not st.get("podIP"):
        return False
    conditions_: Sequence[Mapping[str, Any]] = st.get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions_)


def _secret_value(secret: Mapping[str, Any] | None, key: str) -> str:
    data = (secret or {}).get("data") or {}
    if key not in data:
        return ""
    return base64.b64decode(data[key]).decode()


# The field manager that keeps a Deployment's replica count while the HPA takes it over: the
# operator's own apply stops declaring it, and a field no manager owns any more would be reset.
HANDOFF_FIELD_MANAGER = "weather-operator-hpa-handoff"
SERVICE = apply.kind_of("v1", "Service")


def observation(step: Step | None, previous: Mapping[str, Any]) -> status.RolloutObservation | None:
    """status.rollout to write: the step's state, else the one stored (a failed reconcile keeps it)."""
    if step is not None:
        return status.RolloutObservation(step.state.to_status() if step.state is not None else None)
    if previous.get("rollout"):
        return status.RolloutObservation(previous["rollout"])
    return None


def active_slot(step: Step | None, previous: Mapping[str, Any]) -> str | None:
    """The form the Service <fleet> follows (None: the single Deployment)."""
    if step is not None:
        return step.workloads.active
    value = (previous.get("rollout") or {}).get("activeSlot")
    return str(value) if value in names.SLOTS else None


class Rollouts:
    """Drives ``advance``: observes the proxy Deployments, runs the analysis, acts on the outcome."""

    def __init__(
        self,
        connection_: connection.Connection,
        children_: children.Children,
        analysis_factory: AnalysisFactory = default_analysis,
    ) -> None:
        self.connection = connection_
        self.children = children_
        self.analysis_factory = analysis_factory

    async def step(
        self,
        body: Mapping[str, Any],
        spec: effective.EffectiveSpec,
        child_memory: children.ChildMemory,
        memory: RolloutMemory,
        inputs: fleet_.FleetInputs,
        previous: Mapping[str, Any],
        now: datetime.datetime,
        smoke_key: str | None = None,
    ) -> Step | None:
        """This reconcile's rollout step; None for a fleet that never had a blue/green rollout."""
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        state = State.from_status(previous.get("rollout"))
        if not spec.strategy.blue_green_enabled and state is None:
            await memory.close()
            return None
        deployments = self.children
        single = await deployments.workload(apply.DEPLOYMENT, namespace, name, child_memory)
        slots = {
            slot: await deployments.workload(
                apply.DEPLOYMENT, namespace, names.slot_deployment_name(name, slot), child_memory
            )
            for slot in names.SLOTS
        }
        service_slot: str | None = None
        if state is None and spec.strategy.blue_green_enabled:
            service = await self.connection.api.get(SERVICE, namespace, names.service_name(name))
            found = ((service or {}).get("spec") or {}).get("selector", {}).get(names.SLOT_LABEL)
            service_slot = str(found) if found in names.SLOTS else None
        active = state.active if state is not None else service_slot
        serving = single if active is None else slots.get(active)
        obs = Observed(
            single=single,
            slots=slots,
            template=fleet_.pod_template_hash(inputs),
            config_hash=fleet_.proxy_config_hash(inputs),
            full_size=full_size(spec, serving),
            annotations=dict((body.get("metadata") or {}).get("annotations") or {}),
            now=now,
            service_slot=service_slot,
        )
        verdict = None
        if (
            state is not None
            and spec.strategy.blue_green_enabled
            and state.phase is Phase.ANALYZING
            and state.preview is not None
            and state.template == obs.template
            and (state.analysis or {}).get("passed") is None
        ):
            verdict = await self._analyse(
                namespace, name, spec, memory, state.preview, obs.template, smoke_key or ""
            )
        result = advance(state, spec, obs, verdict)
        if result.state is None or result.state.phase is not Phase.ANALYZING:
            await memory.close()
        elif result.start_analysis and result.state.preview is not None:
            await self._analyse(
                namespace, name, spec, memory, result.state.preview, obs.template, smoke_key or ""
            )
        if result.handoff:
            current = replicas_of(obs.form(result.workloads.active))
            result = dataclasses.replace(
                result, handoff_replicas=current if current is not None else obs.full_size
            )
        return result

    async def _analyse(
        self,
        namespace: str,
        name: str,
        spec: effective.EffectiveSpec,
        memory: RolloutMemory,
        slot: str,
        template: str,
        smoke_key: str,
    ) -> Verdict | None:
        """The analysis's next verdict; a new analysis (and no verdict yet) when none runs for the slot."""
        if memory.analysis is not None and memory.key == (slot, template):
            try:
                return await memory.analysis.step()
            except Exception:  # the next step tries again; the progress deadline bounds it
                logger.exception("the analysis of %s/%s slot %s failed a step", namespace, name, slot)
                return None
        await memory.close()
        urls, ca, server_name = await analysis_inputs(self.connection.api, namespace, name, spec, slot)
        analysis: Analysis | None = None
        try:
            analysis = self.analysis_factory(
                spec.strategy.blue_green.analysis, urls, smoke_key, ca, server_name
            )
            await analysis.start()
        except Exception:  # tried again at the next step; the progress deadline bounds it
            logger.exception("the analysis of %s/%s slot %s could not start", namespace, name, slot)
            if analysis is not None:
                await analysis.aclose()
            return None
        memory.analysis, memory.key = analysis, (slot, template)
        return None

    async def hand_over(self, namespace: str, name: str, step: Step) -> None:
        """Before the apply that stops declaring the replica count: keep it for the HPA."""
        if not step.handoff or step.handoff_replicas is None:
            return
        await self.connection.api.apply(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": names.slot_deployment_name(name, step.workloads.active),
                    "namespace": namespace,
                },
                "spec": {"replicas": step.handoff_replicas},
            },
            field_manager=HANDOFF_FIELD_MANAGER,
        )

    async def after(self, body: Mapping[str, Any], step: Step, trigger: str) -> None:
        """The step's Events, and the annotations it acted on removed from the WeatherProxy."""
        for type_, reason, message in step.events:
            events.post(body, type_, reason, message)
        if step.acted_on:
            metadata = body["metadata"]
            patch = {"metadata": {"annotations": dict.fromkeys(step.acted_on)}}
            await self.connection.api.patch(
                apply.WEATHERPROXY, metadata["namespace"], metadata["name"], patch
            )
