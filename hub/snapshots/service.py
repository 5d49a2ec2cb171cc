"""SnapshotService: takes snapshots off the ingest thread, analyses them in a pool, stores
them, writes their metrics, raises and clears camera-health alerts, answers snapshot
requests and flags cameras whose snapshots stopped.

A thin facade over its parts: `intake` (header checks, the latest-wins slots, rejection
accounting), `runner` (the analysis workers and what each analysed snapshot leaves behind),
`cameras` (health, thresholds, the views), `staleness`, `requests` (the `snapshot` command
and its answers). Memory is bounded: each camera has one latest-wins slot (a newer snapshot
replaces a waiting one, which is counted as superseded) and the waiting bytes of all
cameras together are capped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hub.clock import Clock
from hub.messages import InboundMessage
from hub.ports import AlertSink, EventSink, PointSink, Publisher
from hub.snapshots import staleness
from hub.snapshots.cameras import Cameras
from hub.snapshots.commands import SnapshotRequest
from hub.snapshots.config import SnapshotConfig
from hub.snapshots.health import Thresholds
from hub.snapshots.intake import Intake, Rejections, new_slots
from hub.snapshots.ports import HeartbeatLastSeen, Lookup
from hub.snapshots.requests import AnswerListener, SnapshotRequests
from hub.snapshots.runner import AnalysisRunner
from hub.snapshots.storage import HistoryItem, SnapshotStorage
from hub.topics import DEFAULT_ROOT


class SnapshotService:
    def __init__(
        self, *, storage: SnapshotStorage, clock: Clock, emit_points: PointSink, alerts: AlertSink,
        events: EventSink, lookup: Lookup, publisher: Publisher, topic_root: str = DEFAULT_ROOT,
        config: SnapshotConfig | None = None, overrides: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        self.storage, self.clock, self.emit_points = storage, clock, emit_points
        self.alerts, self.events, self.lookup, self.publisher = alerts, events, lookup, publisher
        self.topic_root = topic_root.strip("/")
        self.config = config or SnapshotConfig()
        self._started_at = 0.0
        slots = new_slots(self.config.max_pending_bytes)
        self.requests = SnapshotRequests(publisher=publisher, clock=clock, topic_root=self.topic_root,
                                         config=self.config)
        rejections = Rejections(clock, self.requests)
        self.cameras = Cameras(config=self.config, storage=storage, alerts=alerts, clock=clock)
        self.intake = Intake(config=self.config, slots=slots, rejections=rejections)
        self.runner = AnalysisRunner(
            config=self.config, slots=slots, storage=storage, cameras=self.cameras,
            requests=self.requests, rejections=rejections, lookup=lookup, emit_points=emit_points,
            alerts=alerts, events=events,
        )
        for device_id, values in (overrides or {}).items():
            self.set_thresholds(device_id, values)

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self.storage.start()
        self._started_at = self.clock.now()
        self.runner.start()

    def stop(self) -> None:
        self.runner.stop()
        self.storage.stop()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until nothing waits or runs (tests and benchmarks)."""
        return self.runner.wait_idle(timeout)

    # --- ingest thread --------------------------------------------------------------------

    def offer(self, msg: InboundMessage) -> None:
        """Cheap checks, then the camera's latest-wins slot. Never blocks, never raises."""
        self.intake.offer(msg)

    # --- commands (PROTOCOL §6 `snapshot`) -------------------------------------------------

    def add_answer_listener(self, listener: AnswerListener) -> None:
        """`listener(device, command_ids, jpeg, ts)` runs (in a worker) for every stored
        snapshot that answers commands, also after request_snapshot stopped waiting."""
        self.requests.add_answer_listener(listener)

    def request_snapshot(self, device_id: str, wait_s: float = 0.0, command_id: str | None = None) -> SnapshotRequest:
        """Send the `snapshot` command; with wait_s > 0, wait for the answer until it is
        analysed and stored, or until the timeout (see SnapshotRequests.request)."""
        return self.requests.request(device_id, wait_s, command_id)

    # --- staleness ------------------------------------------------------------------------

    def check_staleness(
        self, now: float, heartbeat_last_seen: HeartbeatLastSeen, cameras: Iterable[str] = ()
    ) -> list[str]:
        """Flag cameras whose heartbeat is fresh but whose snapshots stopped; clear the others.

        `cameras`: registered camera ids, so a camera that never sent a snapshot since the
        hub started is flagged too. Call it periodically (every minute). Returns the stale ids.
        """
        return staleness.check_staleness(
            self.cameras, alerts=self.alerts, config=self.config, started_at=self._started_at,
            now=now, heartbeat_last_seen=heartbeat_last_seen, cameras=cameras,
        )

    # --- queries and settings ---------------------------------------------------------------

    def camera_health(self, device_id: str) -> dict[str, Any] | None:
        """The camera's image health, or None when it never sent a snapshot (nor is stale)."""
        return self.cameras.camera_health(device_id)

    def all_health(self) -> list[dict[str, Any]]:
        return self.cameras.all_health()

    def knows(self, device_id: str) -> bool:
        """A registered device, or a camera that sent a snapshot."""
        return self.lookup(device_id) is not None or self.camera_health(device_id) is not None

    def latest_jpeg(self, device_id: str, *, thumbnail: bool = False) -> tuple[bytes | None, Any]:
        """The latest snapshot (or its small copy) and its timestamp; (None, None) before any."""
        ts = (self.storage.latest_meta(device_id) or {}).get("ts")
        return (self.storage.thumbnail(device_id) if thumbnail else self.storage.latest(device_id)), ts

    def history(self, device_id: str) -> list[HistoryItem]:
        """The kept snapshots of one camera, newest first."""
        return self.storage.history(device_id)

    def history_jpeg(self, device_id: str, item_id: int) -> bytes | None:
        return self.storage.history_item(device_id, item_id)

    def thresholds_for(self, device_id: str) -> Thresholds:
        return self.cameras.thresholds_for(device_id)

    def set_thresholds(self, device_id: str, overrides: Mapping[str, float]) -> Thresholds:
        """Per-camera overrides of the defaults (ValueError names a bad one)."""
        return self.cameras.set_thresholds(device_id, overrides)

    def reset_reference(self, device_id: str) -> None:
        """Forget the camera's reference view (it was re-aimed on purpose); clears `moved`."""
        self.cameras.reset_reference(device_id)
