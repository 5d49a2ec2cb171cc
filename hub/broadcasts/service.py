"""BroadcastService: schedules, fires, arbitrates and tracks broadcasts to the loudspeakers.

A thin facade over its parts, which share one lock: `scheduler` (the timetable, firing,
quiet hours, create/cancel), `queries` (what the API reads), `device_input` (acks,
presence, speaker heartbeats), `dispatch` (commands to the speakers, arbitration,
resends) and `outcomes` (what each delivery change leaves behind). I/O at the edges only:
the SQLite store, the publisher, the point/alert/event sinks.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.broadcasts.catalog import Catalog
from hub.broadcasts.config import BroadcastConfig
from hub.broadcasts.device_input import DeviceInput
from hub.broadcasts.dispatch import Dispatcher
from hub.broadcasts.media import MediaStore
from hub.broadcasts.model import (
    AlertSink,
    BroadcastSpec,
    EmitPoints,
    EventSink,
    IsOnline,
    ListSpeakers,
    NullAlerts,
    Publisher,
)
from hub.broadcasts.outcomes import Outcomes, Recorder
from hub.broadcasts.queries import BroadcastQueries
from hub.broadcasts.scheduler import Scheduler
from hub.broadcasts.store import BroadcastStore
from hub.clock import Clock
from hub.topics import Topics


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
        lock = threading.RLock()
        self.store = BroadcastStore(self.store_path)
        self.outcomes = Outcomes(self.store, emit_points=self.emit_points, alerts=self.alerts,
                                 events=self.events)
        catalog = Catalog(self.store, self.config.tz)
        self.dispatch = Dispatcher(
            topics=Topics(self.config.topic_root), publish=self.publish, is_online=self.is_online,
            play_body=catalog.play_body, ack_timeout_s=self.config.ack_timeout_s,
            stop_before_preempt=self.config.stop_before_preempt,
        )
        recorder = Recorder(self.dispatch, self.outcomes, self.clock, self.config.flush_interval_s)
        self.scheduler = Scheduler(
            store=self.store, catalog=catalog, dispatch=self.dispatch, outcomes=self.outcomes,
            recorder=recorder, clock=self.clock, config=self.config,
            list_speakers=self.list_speakers, media=self.media, lock=lock,
        )
        self.queries = BroadcastQueries(store=self.store, catalog=catalog, scheduler=self.scheduler,
                                        dispatch=self.dispatch, recorder=recorder, lock=lock)
        self.device_input = DeviceInput(store=self.store, dispatch=self.dispatch, recorder=recorder,
                                        lock=lock)
        with lock:
            self.scheduler.reload()
            self.dispatch.load(self.store.open_deliveries())

    # --- lifecycle ----------------------------------------------------------------
    def start(self, thread: bool = True) -> None:
        """With `thread`, the scheduler thread's first tick waits `settle_s` (or a wake-up) so
        the retained presence of the speakers has arrived; without, tick once now (tests)."""
        self.scheduler.start(thread)

    def stop(self) -> None:
        self.scheduler.stop()
        self.flush()
        self.store.close()

    def tick(self, now: float | None = None) -> None:
        self.scheduler.tick(now)

    # --- operators ----------------------------------------------------------------
    def create(self, spec: BroadcastSpec, actor: str) -> str:
        """Schedule a broadcast; raises ScheduleError (→ 422) when it cannot be evaluated."""
        return self.scheduler.create(spec, actor)

    def cancel(self, bid: str, actor: str) -> bool:
        """Drop future occurrences, stop it where it plays. False when already cancelled."""
        return self.scheduler.cancel(bid, actor)

    def set_quiet_hours(self, village: str, start: str, end: str, actor: str) -> None:
        self.scheduler.set_quiet_hours(village, start, end, actor)

    def quiet_hours(self) -> dict[str, Any]:
        return self.scheduler.quiet_hours()

    # --- queries ------------------------------------------------------------------
    def flush(self) -> None:
        self.queries.flush()

    def list_broadcasts(self, status: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        return self.queries.list_broadcasts(status, limit)

    def get(self, bid: str, upcoming: int = 5, detailed: int = 5) -> dict[str, Any]:
        return self.queries.get(bid, upcoming, detailed)

    def calendar(self, start: float, end: float) -> list[dict[str, Any]]:
        return self.queries.calendar(start, end)

    def now_playing(self) -> list[dict[str, Any]]:
        return self.queries.now_playing()

    def next_up(self, limit: int = 5) -> list[dict[str, Any]]:
        return self.queries.next_up(limit)

    # --- device input (called by the ingest pipeline) ------------------------------
    def on_ack(self, device_id: str, payload: bytes, received_at: float) -> bool:
        """One §6 ack; False when rejected (already counted and logged)."""
        return self.device_input.on_ack(device_id, payload, received_at)

    def on_presence(self, device_id: str, online: bool, ts: float) -> None:
        self.device_input.on_presence(device_id, online, ts)

    def on_speaker_heartbeat(self, device_id: str, state: str | None, playing: str | None,
                             ts: float) -> None:
        self.device_input.on_speaker_heartbeat(device_id, state, playing, ts)
