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


# --- msgspec first, `json` as the reference ---------------------------------------------------
def _parse_with_json_only(payload: bytes, device_id: str) -> object:
    from unittest import mock

    import hub.broadcasts.acks as acks

    with mock.patch.object(acks, "_load", json.loads):
        return acks.parse_ack(payload, device_id)


def _documents() -> object:
    from hypothesis import strategies as st

    scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
    values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)
    acks = st.fixed_dictionaries(
        {}, optional={"id": st.one_of(st.text(max_size=70), values), "state": st.sampled_from(
            ["received", "done", "failed", "nope", ""]) | values, "ts": values, "reason": values})
    encoded = st.one_of(acks, values).map(lambda d: json.dumps(d).encode())  # NaN/Infinity as json writes them
    raw = st.binary(max_size=60) | st.sampled_from([b"\xef\xbb\xbf{\"id\":\"c\",\"state\":\"done\"}",
                                                    b'{"id":"\\ud800","state":"done"}', b'{"id":"c","id":"d","state":"done"}',
                                                    b'{"id":"c","state":"done","ts":1e400}', b"[" * 3000])
    return st.one_of(encoded, raw)


def test_msgspec_first_parses_every_ack_as_the_json_module_did() -> None:
    from hypothesis import given, settings

    @settings(max_examples=500, deadline=None)
    @given(payload=_documents())  # type: ignore[arg-type]
    def check(payload: bytes) -> None:
        assert parse_ack(payload, "spk1") == _parse_with_json_only(payload, "spk1")

    check()
