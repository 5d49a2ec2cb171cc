"""Plain values of the broadcast domain: what the service, store and API pass around."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from hub.ports import AlertSink as AlertSink
from hub.ports import EventSink as EventSink
from hub.ports import PointSink, PublishFn
from hub.targets import Targets

EMERGENCY_PRIORITY: Final = 8

# PROTOCOL §7 delivery states, in the order a delivery moves through them.
DELIVERY_STATES: Final[tuple[str, ...]] = (
    "pending", "offline", "sent", "received", "playing",
    "done", "failed", "rejected", "preempted", "expired",
)
TERMINAL_STATES: Final[frozenset[str]] = frozenset({"done", "failed", "rejected", "preempted", "expired"})
# Where a speaker is (or is about to be) busy with a play command.
BUSY_STATES: Final[frozenset[str]] = frozenset({"sent", "received", "playing"})
_RANK: Final[dict[str, int]] = {
    "pending": 0, "offline": 0, "sent": 1, "received": 2, "playing": 3,
    "done": 4, "failed": 4, "rejected": 4, "preempted": 4, "expired": 4,
}

QuietPolicy = Literal["postpone", "skip"]
BroadcastStatus = Literal["active", "finished", "cancelled"]
OccurrenceStatus = Literal["fired", "missed", "cancelled"]


def state_rank(state: str) -> int:
    return _RANK.get(state, 0)


def may_move(old: str, new: str, *, from_device: bool) -> bool:
    """Delivery states only move forward; a terminal state is final.

    One exception: `expired` decided by the hub (no ack in time) yields to what the speaker
    itself reports later (the broker may have held the command while the hub gave up).
    """
    if old == new:
        return False
    if old in TERMINAL_STATES:
        return from_device and old == "expired" and new in ("received", "playing", "done", "failed")
    return state_rank(new) >= state_rank(old)


class NotFound(KeyError):
    """No broadcast with this id."""


@dataclass(frozen=True, slots=True)
class SpeakerRef:
    """A loudspeaker as the broadcast service sees it (hub.bootstrap builds these from the registry)."""

    id: str
    village: str | None = None
    group: str | None = None


def resolve_targets(targets: Targets, speakers: list[SpeakerRef]) -> list[SpeakerRef]:
    """Speakers a broadcast reaches, each once, in a stable order (pure; done at fire time)."""
    seen: dict[str, SpeakerRef] = {}
    for s in speakers:
        if s.id not in seen and targets.matches(s):
            seen[s.id] = s
    return sorted(seen.values(), key=lambda s: s.id)


@dataclass(frozen=True, slots=True)
class BroadcastSpec:
    """What an operator asked for (validated by the API models)."""

    title: str
    media: dict[str, Any]  # PROTOCOL §6 media object, as sent to the speakers
    targets: Targets
    priority: int = 3
    volume: int = 70
    repeat: int = 1
    start: str | None = None  # ISO 8601; None = now
    rrule: str | None = None
    tz: str | None = None  # IANA zone the rrule is evaluated in (default: see schedule.py)
    quiet_hours: QuietPolicy = "postpone"
    valid_for_s: float = 1800.0  # how long after its due time a play may still start

    @property
    def emergency(self) -> bool:
        return self.priority >= EMERGENCY_PRIORITY


def spec_to_dict(spec: BroadcastSpec) -> dict[str, Any]:
    return {
        "title": spec.title, "media": spec.media, "priority": spec.priority,
        "volume": spec.volume, "repeat": spec.repeat,
        "targets": spec.targets.wire(),
        "schedule": {"start": spec.start, "rrule": spec.rrule, "tz": spec.tz},
        "quiet_hours": spec.quiet_hours, "valid_for_s": spec.valid_for_s,
    }


def spec_from_dict(d: dict[str, Any]) -> BroadcastSpec:
    t, s = d["targets"], d["schedule"]
    return BroadcastSpec(
        title=d["title"], media=d["media"], priority=d["priority"], volume=d["volume"],
        repeat=d["repeat"], start=s["start"], rrule=s["rrule"], tz=s["tz"],
        targets=Targets(t["all"], tuple(t["villages"]), tuple(t["groups"]), tuple(t["devices"])),
        quiet_hours=d["quiet_hours"], valid_for_s=d["valid_for_s"],
    )


@dataclass(slots=True)
class Delivery:
    """One occurrence's play on one speaker (mutable: the service moves its state)."""

    command_id: str
    occurrence_id: str
    broadcast_id: str
    device_id: str
    village: str
    group: str
    priority: int
    state: str
    due_at: float  # not before (quiet hours may postpone it)
    expires_at: float
    sent_at: float | None = None
    send_count: int = 0
    updated_at: float = 0.0
    reason: str = ""

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: str


# --- the collaborators the service is built with (AlertSink, EventSink: from hub.ports) ---

Publisher = PublishFn  # the MQTT client's `publish` method
EmitPoints = PointSink
ListSpeakers = Callable[[], list[SpeakerRef]]
IsOnline = Callable[[str], bool]


@dataclass(slots=True)
class NullAlerts:
    """Stand-in when no alert book is wired (keeps what it was told, for tests)."""

    raised: dict[str, str] = field(default_factory=dict)

    def raise_alert(
        self, key: str, *, device_id: str | None, type: str, severity: str, message: str, ts: float
    ) -> None:
        self.raised[key] = message

    def clear_alert(self, key: str, ts: float) -> None:
        self.raised.pop(key, None)
