"""What each delivery change leaves behind: the database row, a `delivery` point (PROTOCOL §9),
a per-occurrence progress event for the wall screen, and alerts for emergencies that did not
reach a speaker; `Recorder` decides when the dispatcher's changes are recorded."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hub import metrics
from hub.broadcasts.dispatch import Change, Dispatcher
from hub.broadcasts.model import (
    EMERGENCY_PRIORITY,
    TERMINAL_STATES,
    AlertSink,
    EmitPoints,
    EventSink,
)
from hub.broadcasts.store import BroadcastStore
from hub.broadcasts.views import summary_of
from hub.clock import Clock
from hub.messages import Point

UNDELIVERED = frozenset({"offline", "expired", "failed", "rejected", "preempted"})
EVENT_CHANGES_MAX = 100  # list individual speakers in a `delivery` event up to this many
COUNTS_CACHED = 5000
FLUSH_BATCH = 1000  # record device input at once when this many changes wait
_FINAL = {state: metrics.broadcast_deliveries.labels(state=state) for state in TERMINAL_STATES}


def undelivered_key(broadcast_id: str, device_id: str) -> str:
    return f"broadcast_undelivered:{broadcast_id}:{device_id}"


class Outcomes:
    def __init__(self, store: BroadcastStore, *, emit_points: EmitPoints | None,
                 alerts: AlertSink, events: EventSink | None) -> None:
        self.store = store
        self.emit_points = emit_points
        self.alerts = alerts
        self.events = events
        self._counts: dict[str, Counter[str]] = {}

    def event(self, type_: str, data: dict[str, Any], ts: float) -> None:
        if self.events is not None:
            self.events.publish(type_, data, ts)

    def fired(self, occurrence_id: str, total: int) -> None:
        if len(self._counts) >= COUNTS_CACHED:  # a cache: reloaded from the database on demand
            self._counts.clear()
        self._counts[occurrence_id] = Counter({"pending": total})

    def counts(self, occurrence_id: str) -> Counter[str]:
        """Delivery states of one occurrence, in memory (loaded once after a restart)."""
        got = self._counts.get(occurrence_id)
        if got is None:
            got = Counter(d.state for d in self.store.deliveries_of_occurrence(occurrence_id))
            self._counts[occurrence_id] = got
        return got

    def record(self, changes: list[Change]) -> None:
        if not changes:
            return
        for c in changes:  # counts first: a lazy load must see the rows before this save
            counts = self.counts(c.delivery.occurrence_id)
            if c.old != c.to:  # count each step as it happened, not the record's state now
                counts[c.old] -= 1
                counts[c.to] += 1
        latest = {c.delivery.command_id: c.delivery for c in changes}
        self.store.save_deliveries(list(latest.values()))
        moved = [c for c in changes if c.old != c.to]
        if self.emit_points is not None and moved:
            self.emit_points([
                Point("delivery",
                      {"device": c.delivery.device_id, "village": c.delivery.village,
                       "village_group": c.delivery.group, "priority": str(c.delivery.priority)},
                      {"broadcast_id": c.delivery.broadcast_id, "command_id": c.delivery.command_id,
                       "state": c.to}, c.ts)
                for c in moved
            ])
        final: Counter[str] = Counter()
        for c in moved:
            self._alert(c)
            if c.to in TERMINAL_STATES:
                final[c.to] += 1
        for state, n in final.items():  # one inc per state and batch: each takes a lock
            _FINAL[state].inc(n)
        by_occ: dict[str, list[Change]] = {}
        for c in changes:
            by_occ.setdefault(c.delivery.occurrence_id, []).append(c)
        for occ, group in by_occ.items():
            data: dict[str, Any] = {"broadcast_id": group[0].delivery.broadcast_id,
                                    "occurrence_id": occ, **summary_of(self.counts(occ))}
            if len(group) <= EVENT_CHANGES_MAX:
                data["changes"] = [{"device": c.delivery.device_id, "state": c.delivery.state,
                                    "reason": c.delivery.reason} for c in group]
            self.event("delivery", data, group[-1].ts)

    def _alert(self, c: Change) -> None:
        d = c.delivery
        if d.priority < EMERGENCY_PRIORITY:
            return
        key = undelivered_key(d.broadcast_id, d.device_id)
        if d.state in UNDELIVERED and d.reason != "cancelled":
            why = f"（{d.reason}）" if d.reason else ""
            state = _STATE_ZH.get(d.state, d.state)
            self.alerts.raise_alert(
                key, device_id=d.device_id, type="broadcast_undelivered", severity="critical",
                message=f"紧急广播未送达 {d.device_id}：{state}{why}（广播 {d.broadcast_id}）", ts=c.ts)
        elif d.state == "done":
            self.alerts.clear_alert(key, c.ts)


# Operators read alerts in Chinese; the state names stay as in PROTOCOL §7 in the API.
_STATE_ZH = {"failed": "播放失败", "rejected": "被拒绝", "preempted": "被抢占", "expired": "已过期",
             "offline": "离线", "missed": "错过"}


class Recorder:
    """The dispatcher's changes, recorded in batches: device input waits at most
    `interval_s` (or FLUSH_BATCH changes); ticks, operator actions and reads flush first,
    so nothing read through the service is ever stale. The caller holds the service lock.

    A play's `sent` step made by a tick is held back until the delivery's next change (the
    speaker's `received` ack, usually milliseconds later) and recorded with it, or at the
    next tick if none came: one database write per speaker instead of two in a fan-out. Until
    then its row still says `pending`; a hub stopped in between (a crash: `stop()` flushes)
    serves it again after the restart with the same command id, which a speaker acks again
    without playing it twice (PROTOCOL §6)."""

    def __init__(self, dispatch: Dispatcher, outcomes: Outcomes, clock: Clock, interval_s: float) -> None:
        self.dispatch = dispatch
        self.outcomes = outcomes
        self.clock = clock
        self.interval_s = interval_s
        self._last = clock.monotonic()
        self._held: dict[str, Change] = {}  # command id → its `sent` step, not recorded yet

    def flush(self) -> None:
        """Everything, the held `sent` steps included."""
        self._last = self.clock.monotonic()
        held, self._held = list(self._held.values()), {}
        self.outcomes.record(held + self.dispatch.drain())

    def flush_tick(self) -> None:
        """The tick's flush: the steps held by the previous tick are recorded now; this tick's
        plays are held when the `sent` step is their delivery's only change in the batch."""
        self._last = self.clock.monotonic()
        due, self._held = list(self._held.values()), {}
        changes = self.dispatch.drain()
        per_delivery = Counter(c.delivery.command_id for c in changes)
        rest: list[Change] = []
        for c in changes:
            cid = c.delivery.command_id
            if c.new == "sent" and c.old in ("pending", "offline") and per_delivery[cid] == 1:
                self._held[cid] = c
            else:
                rest.append(c)
        self.outcomes.record(due + rest)

    def flush_soon(self) -> None:
        if (len(self.dispatch.changes) >= FLUSH_BATCH
                or self.clock.monotonic() - self._last >= self.interval_s):
            self._last = self.clock.monotonic()
            changes = self.dispatch.drain()
            held = self._held
            if held:  # a held step goes first, with the change that followed it
                pulled = [h for h in (held.pop(c.delivery.command_id, None) for c in changes)
                          if h is not None]
                changes = pulled + changes
            self.outcomes.record(changes)
