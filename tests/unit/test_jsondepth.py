"""hub.jsondepth: a device document nested too deep is refused before any decoder recurses into it.

The oracle is the depth of the document `json` decodes (with a limit low enough for `json` to
decode everything hypothesis generates).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.broadcasts.acks import parse_ack
from hub.devices.events import EventRejected, parse_event
from hub.devices.heartbeat import HeartbeatRejected, parse_heartbeat
from hub.jsondepth import MAX_DEPTH, PEELS, depth_error, too_deep
from hub.messages import Rejection


def depth(doc: Any) -> int:
    if isinstance(doc, dict):
        return 1 + max(map(depth, doc.values()), default=0)
    if isinstance(doc, list):
        return 1 + max(map(depth, doc), default=0)
    return 0


def nested(levels: int, inner: Any = 1) -> Any:
    """`levels` of arrays and objects, alternating, around `inner`."""
    doc = inner
    for i in range(levels):
        doc = [doc] if i % 2 else {"k": doc}
    return doc


# brackets, quotes and backslashes in keys and strings: none of them may count as a level
TEXT = st.text(alphabet="[]{}\"\\ab", max_size=6)
DOCS = st.recursive(st.none() | st.integers() | TEXT,
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
                    max_leaves=60)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=DOCS, limit=st.integers(1, 2 * PEELS + 3), ascii_only=st.booleans())
def test_too_deep_agrees_with_the_depth_json_decodes(doc: Any, limit: int, ascii_only: bool) -> None:
    payload = json.dumps(doc, ensure_ascii=ascii_only).encode()
    assert too_deep(payload, limit) == (depth(doc) > limit)


@pytest.mark.parametrize("levels", [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 3 * MAX_DEPTH])
def test_the_limit_is_exact_for_blocks_deeper_than_the_peels(levels: int) -> None:
    doc = [nested(levels - 1) for _ in range(50)]
    assert too_deep(json.dumps(doc).encode()) == (depth(doc) > MAX_DEPTH)


@pytest.mark.parametrize("payload", [
    b"[" * 16_384,  # the usual attack
    b"[" + b"[]" * 8000,  # never closed
    b"{" * 40 + b"]" * 40,  # closed with the other bracket: not JSON, and as deep
    b'["' + b"\\" * 16_000,  # an unterminated string, a lone backslash at the end
])
def test_hostile_payloads_are_too_deep_or_left_to_the_decoder_to_refuse_at_once(payload: bytes) -> None:
    if not too_deep(payload):
        with pytest.raises(ValueError):
            json.loads(payload)


def test_brackets_inside_strings_do_not_count() -> None:
    payload = json.dumps({"kind": "camera", "fw": "[" * 500, "x": "\\\"{" * 100}).encode()
    assert not too_deep(payload)


def under_a_tight_recursion_budget(parse: Any, payload: bytes) -> Any:
    """Parse with less recursion budget left than a deep document needs: a parser that handed
    the document to a recursive decoder would hit RecursionError instead of refusing it itself."""
    def at(depth_left: int) -> Any:
        return at(depth_left - 1) if depth_left else parse(payload)
    limit = sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(200)
        return at(0)
    finally:
        sys.setrecursionlimit(limit)


DEEP = b'{"kind": "camera", "id": "1", "state": "received", "type": "fault", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"


def test_a_deep_heartbeat_is_refused_before_it_is_decoded() -> None:
    got = under_a_tight_recursion_budget(lambda p: parse_heartbeat("cam-1", p, 1.0), DEEP)
    assert isinstance(got, HeartbeatRejected)
    assert (got.reason, got.detail) == ("not_json", depth_error())


def test_a_deep_event_is_refused_before_it_is_decoded() -> None:
    got = under_a_tight_recursion_budget(lambda p: parse_event("cam-1", p, 1.0), DEEP)
    assert isinstance(got, EventRejected)
    assert (got.reason, got.detail) == ("not_json", depth_error())


def test_a_deep_ack_is_refused_before_it_is_decoded() -> None:
    got = under_a_tight_recursion_budget(lambda p: parse_ack(p, "spk-1"), DEEP)
    assert isinstance(got, Rejection)
    assert (got.reason, got.detail) == ("not_json", depth_error())


def test_an_event_detail_as_deep_as_allowed_is_kept() -> None:
    detail = nested(MAX_DEPTH - 1)
    got = parse_event("cam-1", json.dumps({"type": "fault", "detail": detail}).encode(), 1.0)
    assert not isinstance(got, EventRejected) and json.loads(got.detail_json) == detail
