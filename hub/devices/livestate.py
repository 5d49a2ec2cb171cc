"""The fleet's latest state, in memory: presence, last values, seq accounting, 24 h history.

Requests read from here, never from the time-series store. Thread-safe: ingest workers
write, the API and the presence sweeper read.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from hub.devices.heartbeat import Heartbeat, lost_between
from hub.devices.presence import PresenceTracker, Status, Transition


@dataclass(slots=True)
class DeviceLive:
    kind: str | None = None
    last_seen: float | None = None
    last_heartbeat: float | None = None
    values: dict[str, Any] = field(default_factory=dict)
    seq: int | None = None
    heartbeats: int = 0
    lost: int = 0
    clock_skew_s: float | None = None


@dataclass(frozen=True, slots=True)
class HeartbeatOutcome:
    lost: int
    transition: Transition | None


_NOTHING_CHANGED = HeartbeatOutcome(0, None)

HISTORY_EVERY_S = 60
HISTORY_POINTS = 24 * 60


class LiveState:
    def __init__(self, timeout_factor: float = 2.5, default_interval_s: float = 30.0) -> None:
        self._lock = threading.Lock()
        self.presence = PresenceTracker(timeout_factor, default_interval_s)
        self._devices: dict[str, DeviceLive] = {}
        self._history: deque[dict[str, Any]] = deque(maxlen=HISTORY_POINTS)
        self._bucket_heartbeats = 0
        self._bucket_lost = 0

    def _dev(self, device_id: str) -> DeviceLive:
        d = self._devices.get(device_id)
        if d is None:
            d = self._devices[device_id] = DeviceLive()
        return d

    def on_heartbeat(self, hb: Heartbeat) -> HeartbeatOutcome:
        with self._lock:
            return self._heartbeat(hb)

    def on_heartbeats(self, batch: list[Heartbeat]) -> list[HeartbeatOutcome]:
        """`on_heartbeat` for each, in order, under one lock."""
        one = self._heartbeat
        with self._lock:
            return [one(hb) for hb in batch]

    def _heartbeat(self, hb: Heartbeat) -> HeartbeatOutcome:
        d = self._devices.get(hb.device_id)
        if d is None:
            d = self._devices[hb.device_id] = DeviceLive()
        d.kind = hb.kind
        d.last_seen = hb.received_at
        d.last_heartbeat = hb.received_at
        d.values.update(hb.fields)
        d.values["ts"] = hb.time
        d.clock_skew_s = hb.clock_skew_s
        lost = lost_between(d.seq, hb.seq)
        if hb.seq is not None:
            d.seq = hb.seq
        d.heartbeats += 1
        d.lost += lost
        self._bucket_heartbeats += 1
        self._bucket_lost += lost
        t = self.presence.on_heartbeat(hb.device_id, hb.received_at, hb.interval_s)
        if not lost and t is None:
            return _NOTHING_CHANGED  # nearly every heartbeat: no frozen dataclass built (~1 µs)
        return HeartbeatOutcome(lost, t)

    def on_status(self, device_id: str, payload: str, now: float) -> Transition | None:
        with self._lock:
            d = self._dev(device_id)
            d.last_seen = now
            t = self.presence.on_status(device_id, payload, now)
            return t

    def touch(self, device_id: str, now: float, kind: str | None = None) -> None:
        """Any message from a device (event, ack, snapshot) counts as seen."""
        with self._lock:
            d = self._dev(device_id)
            d.last_seen = now
            if kind and not d.kind:
                d.kind = kind

    def sweep(self, now: float) -> list[Transition]:
        with self._lock:
            out = self.presence.sweep(now)
            return out

    def status(self, device_id: str) -> Status:
        with self._lock:
            return self.presence.status(device_id)

    def get(self, device_id: str) -> tuple[DeviceLive | None, Status, str | None]:
        with self._lock:
            d = self._devices.get(device_id)
            copy = None
            if d is not None:
                copy = DeviceLive(d.kind, d.last_seen, d.last_heartbeat, dict(d.values), d.seq,
                                  d.heartbeats, d.lost, d.clock_skew_s)
            return copy, self.presence.status(device_id), self.presence.reason(device_id)

    def statuses(self) -> dict[str, tuple[Status, float | None]]:
        """device → (status, last_seen) for every device heard of."""
        with self._lock:
            known = self.presence.known()
            return {
                dev: (known.get(dev, "unknown"), d.last_seen) for dev, d in self._devices.items()
            }

    def peek(self, device_id: str) -> tuple[Status, float | None]:
        """(status, last_seen) without taking the lock: single dict reads are atomic in CPython,
        so request paths that look at thousands of devices do not queue behind ingest."""
        entry = self.presence.peek(device_id)
        d = self._devices.get(device_id)
        return entry, (d.last_seen if d is not None else None)

    def last_heartbeat(self, device_id: str) -> float | None:
        with self._lock:
            d = self._devices.get(device_id)
            return d.last_heartbeat if d else None

    # --- 24 h history for the wall screen's charts -------------------------------------
    def record_history(self, ts: float, counts: dict[str, int]) -> None:
        with self._lock:
            point = {"ts": ts, **counts, "heartbeats": self._bucket_heartbeats,
                     "heartbeats_lost": self._bucket_lost}
            self._bucket_heartbeats = 0
            self._bucket_lost = 0
            self._history.append(point)

    def history(self, since: float) -> list[dict[str, Any]]:
        with self._lock:
            return [p for p in self._history if p["ts"] >= since]
