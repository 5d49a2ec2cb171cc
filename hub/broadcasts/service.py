"""BroadcastService: schedules, fires, arbitrates and tracks broadcasts to the loudspeakers.

I/O at the edges only: the SQLite store, the publisher, the point/alert/event sinks. The
decisions are pure (`schedule.due`, `schedule.apply_quiet_hours`, `arbiter.decide`,
`acks.parse_ack`). A scheduler thread calls `tick()` every `tick_s` (tests call it directly
with a ManualClock); creating a broadcast that is due now wakes it at once.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hub import metrics
from hub.broadcasts.acks import parse_ack
from hub.broadcasts.dispatch import Change, Dispatcher, new_command_id
from hub.broadcasts.media import MediaStore
from hub.broadcasts.model import (
    AlertSink,
    BroadcastSpec,
    Delivery,
    EmitPoints,
    EventSink,
    IsOnline,
    ListSpeakers,
    NullAlerts,
    Publisher,
    resolve_targets,
    spec_from_dict,
    spec_to_dict,
)
from hub.broadcasts.outcomes import Outcomes
from hub.broadcasts.schedule import (
    DEFAULT_GRACE_S,
    DEFAULT_QUIET_HOURS,
    QuietHours,
    Recurrence,
    ScheduleError,
    apply_quiet_hours,
    due,
    parse_recurrence,
    zone_of,
)
from hub.broadcasts.views import broadcast_view, calendar_items
from hub.clock import Clock
from hub.messages import Rejection
from hub.topics import Topics

log = logging.getLogger(__name__)

MAX_FIRES_PER_TICK = 1000
LOADED_CACHED = 5000


class NotFound(KeyError):
    pass


@dataclass(frozen=True, slots=True)
class BroadcastConfig:
    topic_root: str = "vhub/v1"
    tz: str = "Asia/Shanghai"  # VH_TZ: quiet hours and schedules without a zone
    grace_s: float = DEFAULT_GRACE_S  # a missed occurrence still fires when this late at most
    ack_timeout_s: float = 10.0  # resend the same play when no `received` came by then
    tick_s: float = 1.0
    quiet_hours: QuietHours = DEFAULT_QUIET_HOURS  # per-village overrides live in the database
    # Informational only: the MediaStore's own base_url builds the media URLs.
    media_base_url: str = "http://127.0.0.1:8000"
    # Send `stop` before a preempting play. Off by default: per PROTOCOL §6 the higher play
    # itself stops the current one, which the speaker then acks `preempted`.
    stop_before_preempt: bool = False
    settle_s: float = 3.0  # after start, before the first tick: presence arrives meanwhile
    flush_interval_s: float = 0.1  # batch the persistence of acks and heartbeats (0: each one)


def count_rejection(r: Rejection) -> None:
    metrics.messages_rejected.labels(kind=r.kind, reason=r.reason).inc()
    log.warning("%s from %s rejected: %s %s", r.kind, r.device_id, r.reason, r.detail)


@dataclass(slots=True)
class _Loaded:
    spec: BroadcastSpec
    rec: Recurrence
    title: str


@dataclass
class BroadcastService:
    store_path: Path | str
    clock: Clock
    list_speakers: ListSpeakers
    is_online: IsOnline
    publish: Publisher
    emit_points: EmitPoints | None = None
    alerts: AlertSink = field(default_factory=NullAlerts)
    events: EventSink | None = None
    config: BroadcastConfig = field(default_factory=BroadcastConfig)
    media: MediaStore | None = None

    def __post_init__(self) -> None:
        from hub.broadcasts.store import BroadcastStore

        self.store = BroadcastStore(self.store_path)
        self._zone = zone_of(self.config.tz)
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._next: dict[str, float] = {}
        self._loaded: dict[str, _Loaded] = {}
        self._village_qh: dict[str, QuietHours] = {}
        self.outcomes = Outcomes(self.store, emit_points=self.emit_points, alerts=self.alerts,
                                 events=self.events)
        self._last_flush = self.clock.monotonic()
        self.dispatch = Dispatcher(
            topics=Topics(self.config.topic_root), publish=self.publish, is_online=self.is_online,
            play_body=self._play_body, ack_timeout_s=self.config.ack_timeout_s,
            stop_before_preempt=self.config.stop_before_preempt,
        )
        self._reload()

    # --- lifecycle ----------------------------------------------------------------
    def _reload(self) -> None:
        with self._lock:
            self._next = {r["id"]: r["next_at"] for r in self.store.active_broadcasts()
                          if r["next_at"] is not None}
            self._village_qh = {v: QuietHours.parse(a, b) for v, (a, b)
                                in self.store.quiet_hours().items()}
            self.dispatch.load(self.store.open_deliveries())

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
        self.flush()
        self.store.close()

    def _run(self) -> None:
        self._wake.wait(self.config.settle_s)
        self._wake.clear()
        while not self._stopping.is_set():
            try:
                self.tick()
            except Exception:  # keep scheduling; the next tick retries
                log.exception("broadcast scheduler tick failed")
            self._wake.wait(self.config.tick_s)
            self._wake.clear()

    # --- the scheduler ---------------------------------------------------------------
    def tick(self, now: float | None = None) -> None:
        now = self.clock.now() if now is None else now
        with self._lock:
            for _ in range(MAX_FIRES_PER_TICK):
                dues = due(self._next, now, self.config.grace_s)
                if not dues:
                    break
                self._fire(dues[0].broadcast_id, dues[0].nominal_at, dues[0].fate, now)
            for d in self.dispatch.due_pending(now):
                self.dispatch.serve(d, now)
            self.dispatch.check_timeouts(now)
            self._flush()

    def _load(self, bid: str) -> _Loaded:
        got = self._loaded.get(bid)
        if got is None:
            row = self.store.get_broadcast(bid)
            if row is None:
                raise NotFound(bid)
            if len(self._loaded) >= LOADED_CACHED:  # a cache: reloaded on demand
                self._loaded.clear()
            spec = spec_from_dict(json.loads(row["spec"]))
            rec = parse_recurrence(spec.start, spec.rrule, spec.tz, self.config.tz, row["created_at"])
            got = self._loaded[bid] = _Loaded(spec, rec, row["title"])
        return got

    def _quiet(self, village: str) -> QuietHours:
        return self._village_qh.get(village, self.config.quiet_hours)

    def _fire(self, bid: str, nominal: float, fate: str, now: float) -> None:
        b = self._load(bid)
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

    def _play_body(self, d: Delivery) -> dict[str, Any]:
        s = self._load(d.broadcast_id).spec
        return {"broadcast_id": d.broadcast_id, "priority": s.priority, "media": s.media,
                "volume": s.volume, "repeat": s.repeat}

    def _flush_soon(self) -> None:
        """Device input is persisted in batches (at most `flush_interval_s` old); reads and
        ticks flush first, so nothing read through the service is ever stale."""
        mono = self.clock.monotonic()
        if (len(self.dispatch.changes) >= 1000
                or mono - self._last_flush >= self.config.flush_interval_s):
            self._flush()

    def _flush(self) -> None:
        self._last_flush = self.clock.monotonic()
        self.outcomes.record(self.dispatch.drain())

    # --- operators ----------------------------------------------------------------
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
        with self._lock:
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
        with self._lock:
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
            self._flush()
        self.outcomes.event("broadcast", {"id": bid, "status": "cancelled", "by": actor,
                                  "stopped_on": len(stopped)}, now)
        return ok

    def set_quiet_hours(self, village: str, start: str, end: str, actor: str) -> None:
        qh = QuietHours.parse(start, end)
        with self._lock:
            self.store.set_quiet_hours(village, qh.start.strftime("%H:%M"), qh.end.strftime("%H:%M"))
            self.store.audit(self.clock.now(), actor, "quiet_hours", None, f"{village} {start}-{end}")
            self._village_qh[village] = qh

    def quiet_hours(self) -> dict[str, Any]:
        fmt = "%H:%M"
        d = self.config.quiet_hours
        return {"default": {"start": d.start.strftime(fmt), "end": d.end.strftime(fmt)},
                "villages": {v: {"start": q.start.strftime(fmt), "end": q.end.strftime(fmt)}
                             for v, q in sorted(self._village_qh.items())}}

    # --- queries ---------------------------------------------------------------------
    def flush(self) -> None:
        with self._lock:
            self._flush()

    def list_broadcasts(self, status: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        self.flush()
        return [{"id": r["id"], "title": r["title"], "priority": r["priority"],
                 "status": r["status"], "created_at": r["created_at"], "created_by": r["created_by"],
                 "next_at": r["next_at"]} for r in self.store.list_broadcasts(status, limit)]

    def get(self, bid: str, upcoming: int = 5, detailed: int = 5) -> dict[str, Any]:
        """One broadcast: every occurrence with its summary; each speaker's delivery for the
        latest `detailed` occurrences (older ones: empty, `deliveries_omitted` true)."""
        self.flush()
        row = self.store.get_broadcast(bid)
        if row is None:
            raise NotFound(bid)
        rec = self._load(bid).rec
        nxt: list[float] = []
        at = row["next_at"]
        while at is not None and len(nxt) < upcoming:
            nxt.append(at)
            at = rec.next_after(at)
        occurrences = self.store.occurrences(bid)
        shown = [o["id"] for o in occurrences[-detailed:]] if detailed > 0 else []
        return broadcast_view(row, occurrences, self.store.state_counts(bid), set(shown),
                              self.store.deliveries_of_occurrences(shown), self.store.waiting(bid),
                              self.store.audit_log(bid), nxt)

    def calendar(self, start: float, end: float) -> list[dict[str, Any]]:
        self.flush()
        future = []
        with self._lock:
            nexts = dict(self._next)
        for bid, at in nexts.items():
            b = self._load(bid)
            for t in b.rec.between(max(start, at), end):
                future.append((bid, b.title, b.spec.priority, t))
        return calendar_items(self.store.occurrences_between(start, end), future)

    def now_playing(self) -> list[dict[str, Any]]:
        with self._lock:
            counts = Counter(d.broadcast_id for d in self.dispatch.open.values()
                             if d.state == "playing")
        return [{"broadcast_id": bid, "title": self._load(bid).title,
                 "priority": self._load(bid).spec.priority, "speakers": n}
                for bid, n in counts.most_common()]

    def next_up(self, limit: int = 5) -> list[dict[str, Any]]:
        with self._lock:
            items = sorted(self._next.items(), key=lambda kv: kv[1])[:limit]
        return [{"broadcast_id": bid, "title": self._load(bid).title,
                 "priority": self._load(bid).spec.priority, "at": at} for bid, at in items]

    # --- device input (called by the ingest pipeline) --------------------------------
    def on_ack(self, device_id: str, payload: bytes, received_at: float) -> bool:
        """One §6 ack. True when accepted; False when rejected (already counted in
        vh_messages_rejected_total{kind="ack"} and logged): the caller counts only accepted."""
        parsed = parse_ack(payload, device_id)
        if isinstance(parsed, Rejection):
            count_rejection(parsed)
            return False
        with self._lock:
            d = self.dispatch.open.get(parsed.command_id)
            if d is None:
                d = self.store.get_delivery(parsed.command_id)
            if d is None:
                if parsed.command_id in self.dispatch.stop_ids:
                    return True  # the ack of a `stop`
                count_rejection(Rejection("ack", "unknown_command", device_id, parsed.command_id))
                return False
            if d.device_id != device_id:
                count_rejection(Rejection("ack", "wrong_device", device_id, parsed.command_id))
                return False
            self.dispatch.on_ack(d, parsed.state, parsed.reason, received_at)
            self._flush_soon()
            return True

    def on_presence(self, device_id: str, online: bool, ts: float) -> None:
        if not online:
            return
        with self._lock:
            self.dispatch.on_reconnect(device_id, ts)
            self._flush_soon()

    def on_speaker_heartbeat(self, device_id: str, state: str | None, playing: str | None,
                             ts: float) -> None:
        with self._lock:
            self.dispatch.on_heartbeat(device_id, state, playing, ts)
            self._flush_soon()
