"""PROTOCOL §6 acknowledgements: bytes → a validated Ack or a typed Rejection. Pure."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from hub.jsondepth import depth_error, too_deep
from hub.messages import Rejection

ACK_MAX_BYTES: Final = 16 * 1024
ACK_STATES: Final[frozenset[str]] = frozenset(
    {"received", "playing", "done", "failed", "rejected", "preempted", "expired"}
)
REASON_MAX_CHARS: Final = 256


@dataclass(frozen=True, slots=True)
class Ack:
    command_id: str
    state: str
    ts: float | None = None
    reason: str = ""


def _reject(reason: str, device_id: str, detail: str = "") -> Rejection:
    return Rejection(kind="ack", reason=reason, device_id=device_id, detail=detail)


_decode = msgspec.json.Decoder().decode


def _load(payload: bytes) -> Any:
    """msgspec (0.4 µs against 3.2 µs for `json` on an ack; 20,000 acks per 10,000-speaker broadcast);
    anything it refuses (a BOM, NaN, lone surrogates, numbers past the float range) is decided by
    `json` as before, so the same documents are accepted."""
    try:
        return _decode(payload)
    except (msgspec.DecodeError, RecursionError):
        return json.loads(payload)


def parse_ack(payload: bytes, device_id: str) -> Ack | Rejection:
    """`{"id": "...", "state": "...", "ts": 1.0, "reason": "..."}` → Ack.

    `id` and `state` are required; a bad `ts` or `reason` drops only that field
    (the state is what matters for delivery tracking). Unknown fields are ignored.
    """
    if len(payload) > ACK_MAX_BYTES:
        return _reject("too_large", device_id, f"{len(payload)} bytes")
    if too_deep(payload):  # before any decoder recurses into it (hub.jsondepth)
        return _reject("not_json", device_id, depth_error())
    try:
        obj = _load(payload)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return _reject("not_json", device_id)
    if not isinstance(obj, dict):
        return _reject("not_object", device_id, type(obj).__name__)
    cid = obj.get("id")
    if not isinstance(cid, str) or not 0 < len(cid) <= 64:
        return _reject("bad_id", device_id, repr(cid)[:80])
    state = obj.get("state")
    if not isinstance(state, str) or state not in ACK_STATES:
        return _reject("bad_state", device_id, repr(state)[:80])
    ts = obj.get("ts")
    ts_ok = isinstance(ts, int | float) and not isinstance(ts, bool) and math.isfinite(ts) and ts > 0
    reason = obj.get("reason")
    return Ack(
        command_id=cid,
        state=state,
        ts=float(ts) if ts_ok else None,  # type: ignore[arg-type]
        reason=reason[:REASON_MAX_CHARS] if isinstance(reason, str) else "",
    )
