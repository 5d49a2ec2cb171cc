"""PROTOCOL §6 ack parsing: valid acks pass, malformed ones are typed rejections."""

from __future__ import annotations

import json

import pytest

from hub.broadcasts.acks import Ack, parse_ack
from hub.messages import Rejection

pytestmark = pytest.mark.unit


def test_full_ack_is_parsed() -> None:
    got = parse_ack(b'{"id":"c1","state":"done","ts":1764400000.5,"reason":"ok","x":1}', "spk1")
    assert got == Ack("c1", "done", 1764400000.5, "ok")


def test_ack_with_bad_ts_keeps_its_state() -> None:
    got = parse_ack(json.dumps({"id": "c1", "state": "playing", "ts": "soon"}).encode(), "spk1")
    assert got == Ack("c1", "playing", None, "")


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe", "not_json"),
        (b"not json", "not_json"),
        (b"[1, 2]", "not_object"),
        (b'{"state": "done"}', "bad_id"),
        (b'{"id": "", "state": "done"}', "bad_id"),
        (json.dumps({"id": "x" * 65, "state": "done"}).encode(), "bad_id"),
        (b'{"id": "c1", "state": "finished"}', "bad_state"),
        (b'{"id": "c1"}', "bad_state"),
        (b'{"id": "c1", "state": "done", "pad": "' + b"x" * 17000 + b'"}', "too_large"),
    ],
)
def test_malformed_ack_is_rejected_with_a_reason(payload: bytes, reason: str) -> None:
    got = parse_ack(payload, "spk1")
    assert isinstance(got, Rejection)
    assert (got.kind, got.reason, got.device_id) == ("ack", reason, "spk1")
