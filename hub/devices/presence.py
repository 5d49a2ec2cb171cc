"""Presence: which device is online, from the retained status topic and heartbeat timeouts. Pure.

A device is
- `online` after an `online` status or any heartbeat, until `timeout_factor × interval_s`
  passes without a heartbeat (reason `timeout`);
- `offline` after an `offline` status (reason `will`: the device's Last Will or its own
  goodbye — MQTT does not tell them apart) or a timeout;
- `unknown` until the hub has heard anything.
Every change is returned as a `Transition`; callers store it (`presence` measurement),
raise/clear alerts and tell the wall screen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Status = Literal["online", "offline", "unknown"]
Reason = Literal["will", "status", "timeout", "heartbeat"]

DEFAULT_TIMEOUT_FACTOR: Final = 2.5
DEFAULT_INTERVAL_S: Final = 30.0


@dataclass(frozen=True, slots=True)
class Transition:
    device_id: str
    status: Status
    reason: Reason
    ts: float


@dataclass(slots=True)
class _Entry:
    status: Status = "unknown"
    reason: Reason | None = None
    since: float = 0.0
    deadline: float | None = None  # when an online device times out
    interval_s: float = DEFAULT_INTERVAL_S


class PresenceTracker:
    def __init__(
        self,
        timeout_factor: float = DEFAULT_TIMEOUT_FACTOR,
        default_interval_s: float = DEFAULT_INTERVAL_S,
    ) -> None:
        self.timeout_factor = timeout_factor
        self.default_interval_s = default_interval_s
        self._entries: dict[str, _Entry] = {}

    def _entry(self, device_id: str) -> _Entry:
        entry = self._entries.get(device_id)
        if entry is None:
            entry = self._entries[device_id] = _Entry(interval_s=self.default_interval_s)
        return entry

    def _go(self, device_id: str, entry: _Entry, status: Status, reason: Reason, ts: float) -> Transition | None:
        if entry.status == status:
            return None
        entry.status, entry.reason, entry.since = status, reason, ts
        return Transition(device_id, status, reason, ts)

    def on_status(self, device_id: str, payload: str, now: float) -> Transition | None:
        """`online` / `offline` on the device's status topic (retained; also its Will)."""
        entry = self._entry(device_id)
        if payload == "online":
            entry.deadline = now + self.timeout_factor * entry.interval_s
            return self._go(device_id, entry, "online", "status", now)
        if payload == "offline":
            entry.deadline = None
            return self._go(device_id, entry, "offline", "will", now)
        raise ValueError(f"status payload must be online or offline, got {payload[:32]!r}")

    def on_heartbeat(self, device_id: str, now: float, interval_s: float | None = None) -> Transition | None:
        entry = self._entry(device_id)
        if interval_s:
            entry.interval_s = interval_s
        entry.deadline = now + self.timeout_factor * entry.interval_s
        return self._go(device_id, entry, "online", "heartbeat", now)

    def sweep(self, now: float) -> list[Transition]:
        """Devices whose heartbeat deadline has passed go offline (reason `timeout`)."""
        out: list[Transition] = []
        for device_id, entry in self._entries.items():
            if entry.status == "online" and entry.deadline is not None and now >= entry.deadline:
                entry.deadline = None
                t = self._go(device_id, entry, "offline", "timeout", now)
                if t:
                    out.append(t)
        return out

    def status(self, device_id: str) -> Status:
        entry = self._entries.get(device_id)
        return entry.status if entry else "unknown"

    def peek(self, device_id: str) -> Status:
        entry = self._entries.get(device_id)
        return entry.status if entry is not None else "unknown"

    def reason(self, device_id: str) -> Reason | None:
        entry = self._entries.get(device_id)
        return entry.reason if entry else None

    def since(self, device_id: str) -> float | None:
        entry = self._entries.get(device_id)
        return entry.since if entry else None

    def known(self) -> dict[str, Status]:
        return {d: e.status for d, e in self._entries.items()}
