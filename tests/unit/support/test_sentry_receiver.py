"""The Sentry-protocol receiver: what the SDK sends arrives decoded; a stranger's request does not."""

from __future__ import annotations

import gzip
import json
import zlib

import httpx
import pytest

from tests.support.sentry_receiver import PROJECT, PUBLIC_KEY, SentryReceiver, parse_envelope, sentry_receiver  # noqa: F401

AUTH = {"X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={PUBLIC_KEY}, sentry_client=test/1"}


def envelope(*events: dict[str, object], with_length: bool = True) -> bytes:
    lines = [json.dumps({"event_id": "e1"}).encode()]
    for event in events:
        payload = json.dumps(event).encode()
        header: dict[str, object] = {"type": "event"}
        if with_length:
            header["length"] = len(payload)
        lines += [json.dumps(header).encode(), payload]
    lines += [json.dumps({"type": "client_report"}).encode(), b'{"discarded_events": []}']
    return b"\n".join(lines) + b"\n"


def test_an_envelope_is_parsed_with_and_without_item_lengths() -> None:
    for with_length in (True, False):
        header, items = parse_envelope(
            envelope({"message": "a\nb"}, {"message": "c"}, with_length=with_length)
        )
        assert header == {"event_id": "e1"}
        assert [h["type"] for h, _ in items] == ["event", "event", "client_report"]
        assert json.loads(items[1][1]) == {"message": "c"}


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [("", lambda b: b), ("gzip", gzip.compress), ("deflate", zlib.compress)],
    ids=["identity", "gzip", "deflate"],
)
def test_envelopes_and_store_bodies_arrive_decoded(
    sentry_receiver: SentryReceiver,  # noqa: F811
    encoding: str,
    encode: object,
) -> None:
    headers = {**AUTH, "Content-Encoding": encoding} if encoding else AUTH
    base = f"http://127.0.0.1:{sentry_receiver.port}/api/{PROJECT}"
    body = envelope({"message": "one"})
    sent = httpx.post(f"{base}/envelope/", content=encode(body), headers=headers)  # type: ignore[operator]
    stored = httpx.post(
        f"{base}/store/",
        content=encode(json.dumps({"message": "two"}).encode()),  # type: ignore[operator]
        headers=headers,
    )
    assert (sent.status_code, stored.status_code) == (200, 200)
    assert [e["message"] for e in sentry_receiver.wait_for_events(2)] == ["one", "two"]
    assert sentry_receiver.bodies[0] == body


def test_another_key_or_project_or_encoding_is_refused_and_kept_nowhere(
    sentry_receiver: SentryReceiver,  # noqa: F811
) -> None:
    base = f"http://127.0.0.1:{sentry_receiver.port}/api"
    body = envelope({"message": "x"})
    wrong_key = {"X-Sentry-Auth": "Sentry sentry_key=someone-else"}
    assert httpx.post(f"{base}/{PROJECT}/envelope/", content=body, headers=wrong_key).status_code == 401
    assert httpx.post(f"{base}/7/envelope/", content=body, headers=AUTH).status_code == 401
    assert httpx.post(f"{base}/{PROJECT}/other/", content=body, headers=AUTH).status_code == 404
    brotli = {**AUTH, "Content-Encoding": "br"}
    assert httpx.post(f"{base}/{PROJECT}/envelope/", content=body, headers=brotli).status_code == 415
    garbled = {**AUTH, "Content-Encoding": "gzip"}
    assert httpx.post(f"{base}/{PROJECT}/envelope/", content=body, headers=garbled).status_code == 400
    query_key = f"{base}/{PROJECT}/envelope/?sentry_key={PUBLIC_KEY}"
    assert httpx.post(query_key, content=body).status_code == 200
    assert len(sentry_receiver.events) == 1
    assert len(sentry_receiver.refused) == 2
