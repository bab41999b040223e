"""KEP-1623 conditions: a transition time changes only with the status; no heartbeat writes."""

from __future__ import annotations

import datetime
from typing import Any

from weather_operator import status

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
T1 = T0 + datetime.timedelta(minutes=5)


def test_transition_time_is_kept_while_status_holds() -> None:
    first = status.merge_conditions(
        None, [status.Observed("Ready", "False", "ReplicasNotReady", "0/2")], 1, T0
    )
    second = status.merge_conditions(
        first, [status.Observed("Ready", "False", "ReplicasNotReady", "1/2")], 2, T1
    )
    assert second[0]["lastTransitionTime"] == first[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert second[0]["observedGeneration"] == 2
    third = status.merge_conditions(
        second, [status.Observed("Ready", "True", "AllReplicasReady", "2/2")], 2, T1
    )
    assert third[0]["lastTransitionTime"] == "2026-01-01T00:05:00Z"


def test_status_unchanged_means_no_write() -> None:
    stored = {"apiKeys": 1, "conditions": [], "other": "kept"}
    assert not status.changed(stored, {"apiKeys": 1, "conditions": []})
    assert status.changed(stored, {"apiKeys": 2})


def test_apikey_ready_reasons() -> None:
    base: dict[str, Any] = {
        "generation": 1,
        "secret_name": "s",
        "key_prefix": "wpk_abcd",
        "expires_at": None,
        "disabled": False,
    }
    ready = status.apikey_ready(status.KeyObservation(**base, proxy_found=True), T0)
    assert (ready.status, ready.reason) == ("True", "KeyIssued")
    missing = status.apikey_ready(status.KeyObservation(**base, proxy_found=False), T0)
    assert missing.reason == "ProxyNotFound"
    expired = status.apikey_ready(status.KeyObservation(**{**base, "expires_at": T0}, proxy_found=True), T1)
    assert expired.reason == "Expired"
    problem = status.apikey_ready(
        status.KeyObservation(**base, proxy_found=True, problem=("SecretNotFound", "no secret")), T0
    )
    assert problem.reason == "SecretNotFound"
