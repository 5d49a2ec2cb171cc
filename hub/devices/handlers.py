"""Device messages → points, effects and rejections. Pure (given a `Directory` of device tags).

A handler decides; it changes nothing. It appends to the batch's `HandlerResult`: line-protocol
points to store, effects for the ingest dispatcher (`hub.ingest.pipeline`) to apply in order
(live state, alerts, the event bus, the broadcast and street-light services) and rejections to
count. One `HandlerResult` gathers a whole batch: one object per message would cost the
heartbeat hot path about a microsecond each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from hub.devices.events import ALERTING, CLEARS, DeviceEvent, parse_event
from hub.devices.heartbeat import Heartbeat, heartbeat_point_fields, parse_heartbeat
from hub.devices.presence import Transition
from hub.devices.status import parse_status
from hub.messages import InboundMessage, Point, Rejection
from hub.tsdb.lineprotocol import encode_line, encode_point


# --- effects ---------------------------------------------------------------------------------
# A parsed `Heartbeat` is itself the effect "apply this heartbeat to the live state". Effects are
# plain slotted dataclasses, to be treated as read-only: a frozen one costs ~0.8 µs more to build,
# and a presence change makes three of them.
@dataclass(slots=True)
class SpeakerState:
    """A speaker's heartbeat: its state and what it plays (the broadcast service follows them)."""

    device_id: str
    state: str | None
    playing: str | None
    ts: float


@dataclass(slots=True)
class StatusSeen:
    device_id: str
    status: str  # online | offline
    ts: float


@dataclass(slots=True)
class Touched:
    """Any message from a device counts as seen."""

    device_id: str
    ts: float
    kind: str | None  # known from the channel (a snapshot comes from a camera), else None


@dataclass(slots=True)
class RaiseAlert:
    """Open the alert `key` (no-op while it is open); `ClearAlert` closes it."""

    key: str
    device_id: str
    type: str
    severity: str
    message: str
    ts: float


@dataclass(slots=True)
class ClearAlert:
    key: str
    ts: float


@dataclass(slots=True)
class BusEvent:
    """One event for the wall screen's stream."""

    type: str
    data: dict[str, Any]
    ts: float


@dataclass(slots=True)
class AckReceived:
    """A §6 ack: the street-light service takes its own (`lt-…`), the broadcast service the rest."""

    msg: InboundMessage


@dataclass(slots=True)
class SnapshotReceived:
    msg: InboundMessage


@dataclass(slots=True)
class PresenceChanged:
    """A device came online or went offline (the broadcast service follows its speakers)."""

    device_id: str
    online: bool
    ts: float


Effect = (Heartbeat | SpeakerState | StatusSeen | Touched | RaiseAlert | ClearAlert | BusEvent
          | PresenceChanged | AckReceived | SnapshotReceived)


@dataclass(slots=True)
class HandlerResult:
    """What handling messages produced: points (line protocol), effects in order, rejections,
    and how many messages of each channel were accepted and how many heartbeats had a skewed clock."""

    points: list[str] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    accepted: dict[str, int] = field(default_factory=dict)
    clock_skewed: int = 0


class Directory(Protocol):
    """Device look-ups the handlers need (the registry, cached; no I/O)."""

    def tags(self, device_id: str, kind: str | None) -> dict[str, str]: ...
    def heartbeat_series(self, device_id: str, kind: str) -> tuple[dict[str, str], str]: ...
    def name(self, device_id: str) -> str: ...


# --- handlers --------------------------------------------------------------------------------
def heartbeat_effects(hb: Heartbeat, effects: list[Effect]) -> None:
    """The effects of one accepted heartbeat: the live state, and a speaker's state."""
    effects.append(hb)
    if hb.kind == "speaker":
        fields = hb.fields
        effects.append(SpeakerState(hb.device_id, fields.get("state"), fields.get("playing"), hb.received_at))


def on_heartbeat(msg: InboundMessage, out: HandlerResult, directory: Directory, skew_limit_s: float) -> None:
    result = parse_heartbeat(msg.device_id, msg.payload, msg.received_at, skew_limit_s=skew_limit_s)
    if not isinstance(result, Heartbeat):
        out.rejections.append(Rejection("heartbeat", result.reason, msg.device_id, result.detail))
        return
    for fr in result.rejected:
        out.rejections.append(Rejection("heartbeat", fr.reason, msg.device_id, field=fr.field))
    if result.clock_skew_s is not None:
        out.clock_skewed += 1
    head = directory.heartbeat_series(msg.device_id, result.kind)[1]
    out.points.append(encode_line(head, heartbeat_point_fields(result) or {"empty": True}, result.time, "heartbeat"))
    accepted = out.accepted
    accepted["heartbeat"] = accepted.get("heartbeat", 0) + 1
    heartbeat_effects(result, out.effects)


def on_status(msg: InboundMessage, out: HandlerResult) -> None:
    status = parse_status(msg.device_id, msg.payload)
    if isinstance(status, Rejection):
        out.rejections.append(status)
        return
    out.effects.append(StatusSeen(msg.device_id, status, msg.received_at))
    out.accepted["status"] = out.accepted.get("status", 0) + 1


_EVENT_LABELS = {"tamper": "防拆报警", "fault": "设备故障", "power_loss": "断电"}


def on_event(msg: InboundMessage, out: HandlerResult, directory: Directory, skew_limit_s: float) -> None:
    result = parse_event(msg.device_id, msg.payload, msg.received_at, skew_limit_s=skew_limit_s)
    if not isinstance(result, DeviceEvent):
        out.rejections.append(Rejection("event", result.reason, msg.device_id, result.detail))
        return
    device = msg.device_id
    effects = out.effects
    effects.append(Touched(device, msg.received_at, None))
    tags = directory.tags(device, None)
    tags["type"] = result.type
    out.points.append(encode_point(Point("event", tags, {"detail": result.detail_json}, result.time)))
    severity = ALERTING.get(result.type)
    if severity:
        effects.append(RaiseAlert(f"{result.type}:{device}", device, result.type, severity,
                                  f"{directory.name(device)}：{_EVENT_LABELS.get(result.type, result.type)}",
                                  result.time))
    cleared = CLEARS.get(result.type)
    if cleared:
        effects.append(ClearAlert(f"{cleared}:{device}", result.time))
    effects.append(BusEvent("device_event", {"device": device, "type": result.type,
                                             "detail": result.detail_json}, result.time))
    out.accepted["event"] = out.accepted.get("event", 0) + 1


def on_ack(msg: InboundMessage, out: HandlerResult) -> None:
    """Counted accepted or rejected by the service that takes it."""
    out.effects.append(Touched(msg.device_id, msg.received_at, None))
    out.effects.append(AckReceived(msg))


def on_snapshot(msg: InboundMessage, out: HandlerResult) -> None:
    """Counted by the snapshot service."""
    out.effects.append(Touched(msg.device_id, msg.received_at, "camera"))
    out.effects.append(SnapshotReceived(msg))


# --- presence --------------------------------------------------------------------------------
_OFFLINE_WHY = {"will": "断开连接（遗嘱消息）", "timeout": "心跳超时", "status": "离线"}


def presence_effects(t: Transition, tags: dict[str, str], name: str, points: list[str],
                     effects: list[Effect]) -> None:
    """A presence change: its point, the offline alert raised or cleared, the wall screen told,
    the broadcast service told."""
    online = t.status == "online"
    points.append(encode_point(Point("presence", tags, {"online": online, "reason": t.reason}, t.ts)))
    key = f"offline:{t.device_id}"
    if online:
        effects.append(ClearAlert(key, t.ts))
    else:
        why = _OFFLINE_WHY.get(t.reason, t.reason)
        effects.append(RaiseAlert(key, t.device_id, "offline", "warning", f"{name} 离线：{why}", t.ts))
    effects.append(BusEvent("presence", {
        "device": t.device_id, "kind": tags.get("kind"), "village": tags.get("village") or None,
        "status": t.status, "reason": t.reason,
    }, t.ts))
    effects.append(PresenceChanged(t.device_id, online, t.ts))
