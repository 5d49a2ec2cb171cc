"""PROTOCOL §5 device events: `{"type": "...", "ts": …, "detail": {...}}`, at most 16 KiB. Pure."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Final

from hub.jsondepth import depth_error, too_deep

MAX_EVENT_BYTES: Final = 16 * 1024
KNOWN_TYPES: Final = frozenset({"motion", "tamper", "fault", "button", "power_loss", "power_restored"})
_TYPE_MAX = 64

# Which events open an alert, and which event clears which alert.
ALERTING: Final[dict[str, str]] = {"tamper": "critical", "fault": "warning", "power_loss": "warning"}
CLEARS: Final[dict[str, str]] = {"power_restored": "power_loss"}


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    device_id: str
    type: str
    time: float
    detail_json: str
    known: bool


@dataclass(frozen=True, slots=True)
class EventRejected:
    device_id: str
    reason: str
    detail: str = ""


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def parse_event(
    device_id: str, payload: bytes, received_at: float, *, skew_limit_s: float = 300.0
) -> DeviceEvent | EventRejected:
    if len(payload) > MAX_EVENT_BYTES:
        return EventRejected(device_id, "too_large", f"{len(payload)} bytes")
    if too_deep(payload):  # before `json` recurses into it (hub.jsondepth)
        return EventRejected(device_id, "not_json", depth_error())
    try:
        doc = json.loads(payload, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        return EventRejected(device_id, "not_json", str(exc)[:200])
    if not isinstance(doc, dict):
        return EventRejected(device_id, "not_object")
    etype = doc.get("type")
    if not isinstance(etype, str) or not etype or len(etype) > _TYPE_MAX or not etype.isprintable():
        return EventRejected(device_id, "bad_type", repr(etype)[:64])
    ts = doc.get("ts")
    point_time = received_at
    if (isinstance(ts, int | float) and not isinstance(ts, bool) and math.isfinite(ts) and ts > 0
            and abs(ts - received_at) <= skew_limit_s):
        point_time = float(ts)
    detail = doc.get("detail", {})
    if detail is None:
        detail = {}
    if not isinstance(detail, dict):
        return EventRejected(device_id, "bad_detail", type(detail).__name__)
    return DeviceEvent(
        device_id=device_id,
        type=etype,
        time=point_time,
        detail_json=json.dumps(detail, ensure_ascii=False, separators=(",", ":")),
        known=etype in KNOWN_TYPES,
    )
