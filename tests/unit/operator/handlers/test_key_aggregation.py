"""keys.yaml from ApiKey records: hashing, rotation grace, expiry; the clock is injected."""

from __future__ import annotations

import datetime
import pathlib

from weather_operator import keys
from weather_operator.render import keys_secret
from weather_proxy import config

NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)
A = "a" * 64
B = "b" * 64


def test_generated_keys_are_prefixed_high_entropy_and_distinct() -> None:
    first, second = keys.generate_key(), keys.generate_key()
    assert first.startswith("wpk_")
    assert len(first) >= 40
    assert first != second
    assert keys.key_prefix(first) == first[:8]
    assert keys.sha256_hex("test") == "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def test_a_short_key_of_your_own_shows_no_prefix() -> None:
    """8 characters of an 8-character key would be the key, in a status, a column and an Event."""
    assert keys.key_prefix("hunter22") is None
    assert keys.key_prefix("x" * 31) is None
    assert keys.key_prefix("my-own-key-of-thirty-two-chars!!") == "my-own-k"


def test_expired_key_drops_out_and_next_transition_is_its_expiry() -> None:
    live = keys.KeyRecord(id="ns/live", proxy="p", sha256=A, expires_at=NOW + datetime.timedelta(hours=1))
    dead = keys.KeyRecord(id="ns/dead", proxy="p", sha256=B, expires_at=NOW - datetime.timedelta(seconds=1))
    file = keys.keys_file([dead, live], NOW)
    assert [entry.id for entry in file.keys] == ["ns/live"]
    assert keys.next_transition([dead, live], NOW) == NOW + datetime.timedelta(hours=1)
    assert keys.keys_file([live], NOW + datetime.timedelta(hours=1)).keys == []


def test_rotation_keeps_the_previous_hash_for_the_grace_period() -> None:
    grace = datetime.timedelta(hours=1)
    hashes = keys.next_hashes({keys.SHA256_ANNOTATION: A}, B, grace, NOW)
    assert (hashes.sha256, hashes.previous_sha256, hashes.previous_expires_at) == (B, A, NOW + grace)
    body = {
        "metadata": {
            "namespace": "ns",
            "name": "k",
            "annotations": {k: v for k, v in hashes.to_patch().items() if v},
        },
        "spec": {"proxyRef": {"name": "p"}},
    }
    record = keys.record_from_body(body)
    assert record is not None
    ids = [(e.id, e.sha256) for e in keys.keys_file([record], NOW).keys]
    assert ids == [("ns/k", B), ("ns/k#previous", A)]
    assert [e.id for e in keys.keys_file([record], NOW + grace).keys] == ["ns/k"]


def test_unchanged_key_does_not_extend_the_grace_and_forgets_it_when_over() -> None:
    later = NOW + datetime.timedelta(hours=2)
    annotations = {
        keys.SHA256_ANNOTATION: B,
        keys.PREVIOUS_SHA256_ANNOTATION: A,
        keys.PREVIOUS_EXPIRES_ANNOTATION: keys.format_time(NOW + datetime.timedelta(hours=1)),
    }
    same = keys.next_hashes(annotations, B, datetime.timedelta(hours=1), NOW)
    assert same.previous_expires_at == NOW + datetime.timedelta(hours=1)
    over = keys.next_hashes(annotations, B, datetime.timedelta(hours=1), later)
    assert over.previous_sha256 is None
    assert over.to_patch()[keys.PREVIOUS_SHA256_ANNOTATION] is None


def test_invalid_spec_gives_no_record() -> None:
    assert keys.record_from_body({"metadata": {"namespace": "ns", "name": "k"}, "spec": {}}) is None


def _body(spec: dict[str, object], annotations: dict[str, str] | None = None) -> dict[str, object]:
    metadata = {"namespace": "ns", "name": "k", "annotations": annotations or {keys.SHA256_ANNOTATION: A}}
    return {"metadata": metadata, "spec": {"proxyRef": {"name": "p"}, **spec}}


def test_scopes_reach_keys_yaml_and_the_proxy_reads_them_back(tmp_path: pathlib.Path) -> None:
    record = keys.record_from_body(_body({"scopes": ["analytics:read", "weather:read"]}))
    assert record is not None
    assert record.scopes == (config.Scope.WEATHER_READ, config.Scope.ANALYTICS_READ)  # the enum's order
    text = keys_secret.keys_yaml(keys.keys_file([record], NOW))
    path = tmp_path / "keys.yaml"
    path.write_text(text)
    (entry,) = config.load_keys(path).keys  # what a proxy pod reads
    assert entry.scopes == [config.Scope.WEATHER_READ, config.Scope.ANALYTICS_READ]
    assert '"scopes":["weather:read","analytics:read"]' in text


def test_a_key_without_scopes_gets_the_defaults_in_keys_yaml() -> None:
    record = keys.record_from_body(_body({}))
    assert record is not None
    (entry,) = keys.keys_file([record], NOW).keys
    assert entry.to_camel_dict()["scopes"] == ["weather:read", "usage:read"]


def test_reordering_the_scopes_leaves_keys_yaml_unchanged() -> None:
    first = keys.record_from_body(_body({"scopes": ["usage:read", "analytics:read"]}))
    second = keys.record_from_body(_body({"scopes": ["analytics:read", "usage:read"]}))
    assert first is not None
    assert second is not None
    assert keys_secret.keys_yaml(keys.keys_file([first], NOW)) == keys_secret.keys_yaml(
        keys.keys_file([second], NOW)
    )


def test_the_previous_key_of_a_rotation_keeps_the_scopes() -> None:
    hashes = keys.next_hashes({keys.SHA256_ANNOTATION: A}, B, datetime.timedelta(hours=1), NOW)
    annotations = {k: v for k, v in hashes.to_patch().items() if v}
    record = keys.record_from_body(_body({"scopes": ["usage:read"]}, annotations))
    assert record is not None
    entries = {entry.id: entry.scopes for entry in keys.keys_file([record], NOW).keys}
    assert entries == {"ns/k": [config.Scope.USAGE_READ], "ns/k#previous": [config.Scope.USAGE_READ]}


def test_unknown_or_repeated_scopes_make_the_spec_unusable() -> None:
    assert keys.record_from_body(_body({"scopes": ["weather:write"]})) is None
    assert keys.record_from_body(_body({"scopes": ["usage:read", "usage:read"]})) is None
    assert keys.record_from_body(_body({"scopes": []})) is None
