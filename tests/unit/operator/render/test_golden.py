"""Golden files of every renderer, for every preset and the notable variations.

A reviewer reads tests/golden/<case>/ to see the exact objects that reach the cluster.
Refresh: ``UPDATE_GOLDEN=1 pytest tests/unit/operator/render``.
"""

from __future__ import annotations

import pytest

from tests.unit.operator.render import cases, golden
from weather_operator.render import apikey, fleet


def _files(result: fleet.Fleet) -> dict[str, str]:
    files = {
        f"{obj['kind'].lower()}-{obj['metadata']['name']}.yaml": golden.dump(obj) for obj in result.objects
    }
    summary = {
        "configHash": result.config_hash,
        "applyOrder": [f"{o['kind']}/{o['metadata']['name']}" for o in result.objects],
        "unwanted": [f"{r.api_version} {r.kind}/{r.name}" for r in result.unwanted],
    }
    files["_fleet.yaml"] = golden.dump(summary)
    return files


def _cases() -> dict[str, fleet.FleetInputs]:
    return {**cases.all_cases(), **cases.blue_green_cases()}


@pytest.mark.parametrize("case", sorted(_cases()))
def test_fleet_matches_golden_files(case: str) -> None:
    result = fleet.render_fleet(_cases()[case])
    assert len(_files(result)) == len(result.objects) + 1, "two children share a kind and name"
    golden.check_case(case, _files(result))


def test_generated_key_secret_matches_golden_file() -> None:
    obj = apikey.render_key_secret("team-a", "team-a-key", "wpk_not-a-real-key-used-only-in-tests")
    golden.check_case("apikey-secret", {"secret-team-a-key.yaml": golden.dump(obj)})
