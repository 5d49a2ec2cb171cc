"""The broadcast scheduler: the timetable of next occurrences, firing what is due (quiet
hours per village), and the operator actions that change it (create, cancel, quiet hours).

The decisions are pure (`schedule.due`, `schedule.apply_quiet_hours`); a thread calls
`tick()` every `tick_s` (tests call it directly with a ManualClock); creating a broadcast
that is due now wakes it at once. Every method runs under the service lock.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from hub import metrics
from hub.broadcasts.catalog import Catalog
from hub.broadcasts.config import BroadcastConfig
from hub.broadcasts.dispatch import Change, Dispatcher, new_command_id
from hub.broadcasts.media import MediaStore
from hub.broadcasts.model import (
    BroadcastSpec,
    Delivery,
    ListSpeakers,
    NotFound,
    resolve_targets,
    spec_to_dict,
)
from hub.broadcasts.outcomes import Outcomes, Recorder
from hub.broadcasts.schedule import (
    ScheduleError,
    apply_quiet_hours,
    due,
    parse_recurrence,
    zone_of,
)
from hub.broadcasts.store import BroadcastStore
from hub.clock import Clock
from hub.quiethours import QuietHours

log = logging.getLogger(__name__)

MAX_FIRES_PER_TICK = 1000


@dataclass(kw_only=True)
class Scheduler:
    store: BroadcastStore
    catalog: Catalog
    dispatch: Dispatcher
    outcomes: Outcomes
    recorder: Recorder
    clock: Clock
    config: BroadcastConfig
    list_speakers: ListSpeakers
    media: MediaStore | None
    lock: threading.RLock
    _next: dict[str, float] = field(default_factory=dict, init=False)
    _village_qh: dict[str, QuietHours] = field(default_factory=dict, init=False)
    _wake: threading.Event = field(default_factory=threading.Event, init=False)
    _stopping: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._zone = zone_of(self.config.tz)

    def reload(self) -> None:
        """The timetable and the villages' quiet hours from the store."""
        with self.lock:
            self._next = {r["id"]: r["next_at"] for r in self.store.active_broadcasts()
                          if r["next_at"] is not None}
            self._village_qh = {v: QuietHours.parse(a, b) for v, (a, b)
                                in self.store.quiet_hours().items()}

    def timetable(self) -> dict[str, float]:
        """broadcast id → its next occurrence (a copy)."""
        with self.lock:
            return dict(self._next)

    # --- the thread ------------------------------------------------------------------
    def start(self, thread: bool = True) -> None:
        """With `thread`, the scheduler thread's first tick waits `settle_s` (or a wake-up) so
        the retained presence of the speakers has arrived; without, tick once now (tests)."""
        if not thread:
            self.tick()
            return
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="broadcasts", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        self._wake.wait(self.config.settle_s)
        self._wake.clear()
        while not self._stopping.is_set():
            try:
                self.tick()
            except Exception:  # keep scheduling; the next tick retries
                log.exception("broadcast scheduler tick failed")
            try:
                self.store.checkpoint()  # outside the lock: acks go on being recorded meanwhile
            except sqlite3.Error:
                log.warning("broadcast database checkpoint failed", exc_info=True)
            self._wake.wait(self.config.tick_s)
            self._wake.clear()

    # --- firing ----------------------------------------------------------------------
    def tick(self, now: float | None = None) -> None:
        now = self.clock.now() if now is None else now
        with self.lock:
            for _ in range(MAX_FIRES_PER_TICK):
                dues = due(self._next, now, self.config.grace_s)
                if not dues:
                    break
                self._fire(dues[0].broadcast_id, dues[0].nominal_at, dues[0].fate, now)
            for d in self.dispatch.due_pending(now):
                self.dispatch.serve(d, now)
            self.dispatch.check_timeouts(now)
            self.recorder.flush_tick()

    def _quiet(self, village: str) -> QuietHours:
        return self._village_qh.get(village, self.config.quiet_hours)

    def _fire(self, bid: str, nominal: float, fate: str, now: float) -> None:
        b = self.catalog.load(bid)
        nxt = b.rec.next_after(nominal)
        occ_id = uuid.uuid4().hex[:16]
        deliveries: list[Delivery] = []
        note = ""
        if fate == "missed":
            note = f"hub was down: {now - nominal:.0f} s late, past the {self.config.grace_s:.0f} s grace"
        else:
            by_village: dict[str, tuple[float | None, str]] = {}
            for s in resolve_targets(b.spec.targets, self.list_speakers()):
                village = s.village or ""
                got = by_village.get(village)
                if got is None:
                    got = by_village[village] = apply_quiet_hours(
                        now, priority=b.spec.priority, policy=b.spec.quiet_hours,
                        qh=self._quiet(village), zone=self._zone)
                at, why = got
                start = now if at is None else at
                deliveries.append(Delivery(
                    command_id=new_command_id(), occurrence_id=occ_id, broadcast_id=bid,
                    device_id=s.id, village=village, group=s.group or "", priority=b.spec.priority,
                    state="pending", due_at=start, expires_at=start + b.spec.valid_for_s,
                    updated_at=now, reason=why,
                ))
        status = "fired" if fate == "fire" else "missed"
        ok = self.store.record_occurrence(
            broadcast_id=bid, occurrence_id=occ_id, nominal_at=nominal, fired_at=now,
            status=status, note=note, deliveries=deliveries,
            next_at=nxt, expected_next_at=nominal)
        if not ok:  # another hub instance took it: follow the database
            row = self.store.get_broadcast(bid)
            if row is None or row["status"] != "active" or row["next_at"] is None:
                self._next.pop(bid, None)
            else:
                self._next[bid] = row["next_at"]
            return
        if nxt is None:
            self._next.pop(bid, None)
        else:
            self._next[bid] = nxt
        self.outcomes.fired(occ_id, len(deliveries))
        for d in deliveries:
            self.dispatch.add(d)
            if d.reason == "quiet_hours":  # skipped: the village is in its quiet hours
                self.dispatch.set_state(d, "expired", now)
        metrics.broadcast_occurrences.labels(status=status).inc()
        log.info("broadcast %s occurrence %s %s: %d speakers", bid, occ_id, fate, len(deliveries))
        self.outcomes.event("broadcast", {"id": bid, "title": b.title, "priority": b.spec.priority,
                                          "occurrence_id": occ_id, "status": status,
                                          "total": len(deliveries), "next_at": nxt}, now)

    # --- operators -------------------------------------------------------------------
    def create(self, spec: BroadcastSpec, actor: str) -> str:
        """Schedule a broadcast; raises ScheduleError (→ 422) when it cannot be evaluated."""
        now = self.clock.now()
        rec = parse_recurrence(spec.start, spec.rrule, spec.tz, self.config.tz, now)
        start_ts = rec.dtstart.timestamp()
        first = rec.first_at_or_after(max(start_ts, now - self.config.grace_s))
        if first is None:
            raise ScheduleError("schedule.start: the schedule has no occurrence from now on")
        if self.media is not None:
            spec = self.media.resolve_spec(spec)
        stored_spec = replace(spec, start=rec.dtstart.isoformat())
        bid = uuid.uuid4().hex[:16]
        with self.lock:
            self.store.insert_broadcast(id=bid, title=spec.title, priority=spec.priority,
                                        spec=spec_to_dict(stored_spec), created_at=now,
                                        created_by=actor, next_at=first)
            self._next[bid] = first
        log.info("broadcast %s %r created by %s, first at %.0f", bid, spec.title, actor, first)
        self.outcomes.event("broadcast", {"id": bid, "title": spec.title, "priority": spec.priority,
                                          "status": "scheduled", "next_at": first}, now)
        if first - self.clock.now() < self.config.tick_s:
            self._wake.set()  # due now (or before the next tick): fire without waiting
        return bid

    def cancel(self, bid: str, actor: str) -> bool:
        """Drop future occurrences, stop it where it plays. False when already cancelled."""
        now = self.clock.now()
        with self.lock:
            if self.store.get_broadcast(bid) is None:
                raise NotFound(bid)
            mine = [d for d in self.dispatch.open.values() if d.broadcast_id == bid]
            stopped: set[str] = set()
            for d in mine:
                if d.state in ("sent", "received", "playing"):
                    if d.device_id not in stopped:
                        self.dispatch.send_stop(d.device_id, bid, now)
                        stopped.add(d.device_id)
                    d.reason = "cancelled"
                    self.dispatch.changes.append(Change(d, d.state, now))
                    self.dispatch.release(d.device_id, d.command_id, now)
                else:
                    self.dispatch.set_state(d, "expired", now, "cancelled")
            ok = self.store.cancel(bid, now, actor)
            self._next.pop(bid, None)
            self.recorder.flush()
        self.outcomes.event("broadcast", {"id": bid, "status": "cancelled", "by": actor,
                                          "stopped_on": len(stopped)}, now)
        return ok

    def set_quiet_hours(self, village: str, start: str, end: str, actor: str) -> None:
        qh = QuietHours.parse(start, end)
        with self.lock:
            self.store.set_quiet_hours(village, qh.start.strftime("%H:%M"), qh.end.strftime("%H:%M"))
            self.store.audit(self.clock.now(), actor, "quiet_hours", None, f"{village} {start}-{end}")
            self._village_qh[village] = qh

    def quiet_hours(self) -> dict[str, Any]:
        fmt = "%H:%M"
        d = self.config.quiet_hours
        return {"default": {"start": d.start.strftime(fmt), "end": d.end.strftime(fmt)},
                "villages": {v: {"start": q.start.strftime(fmt), "end": q.end.strftime(fmt)}
                             for v, q in sorted(self._village_qh.items())}}
