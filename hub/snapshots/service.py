"""SnapshotService: takes snapshots off the ingest thread, analyses them in a pool, stores
them, writes their metrics, raises and clears camera-health alerts, answers snapshot
requests and flags cameras whose snapshots stopped.

Memory is bounded: each camera has one latest-wins slot (a newer snapshot replaces a
waiting one, which is counted as superseded) and the waiting bytes of all cameras
together are capped. A camera is analysed by one worker at a time, in arrival order,
so its health hysteresis sees its frames in order.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from hub import metrics
from hub.clock import Clock
from hub.messages import InboundMessage, Point
from hub.ports import AlertSink, EventSink, PointSink, Publisher
from hub.snapshots.commands import CommandWaiters, SnapshotRequest, snapshot_command
from hub.snapshots.config import SnapshotConfig
from hub.snapshots.health import HEALTH_STATES, CameraHealth, Condition, HealthUpdate, Thresholds
from hub.snapshots.jpeg import JpegInfo, JpegRejected, Reject, inspect_jpeg
from hub.snapshots.pipeline import Analysed, analyse_jpeg, single_threaded_opencv
from hub.snapshots.ports import HeartbeatLastSeen, Lookup
from hub.snapshots.slots import LatestWinsSlots, Put
from hub.snapshots.storage import HistoryItem, SnapshotStorage
from hub.topics import is_valid_id

log = logging.getLogger(__name__)

LOG_EVERY_S = 60.0  # one log line per device and reason per minute; every rejection is counted
SEVERITY = {Condition.COVERED: "critical", Condition.MOVED: "critical", Condition.DARK: "warning",
            Condition.BLURRED: "warning", Condition.FROZEN: "warning"}
OVERLOADED = "overloaded"
ANALYSIS_ERROR = "analysis_error"
SHUTDOWN = "shutdown"


@dataclass
class _Pending:
    msg: InboundMessage
    info: JpegInfo
    ts: float
    cmd_ids: set[str]


def _size(p: _Pending) -> int:
    return p.info.size


def _answer_older_requests_too(new: _Pending, old: _Pending) -> None:
    new.cmd_ids |= old.cmd_ids  # the newer frame answers the replaced frame's requests too


@dataclass
class _Camera:
    health: CameraHealth = field(default_factory=CameraHealth)
    thresholds: Thresholds | None = None
    last_snapshot_at: float | None = None  # hub time of the last analysed snapshot
    last: dict[str, Any] = field(default_factory=dict)  # metrics of the last analysed snapshot
    stale: bool = False


class SnapshotService:
    def __init__(
        self, *, storage: SnapshotStorage, clock: Clock, emit_points: PointSink, alerts: AlertSink,
        events: EventSink, lookup: Lookup, publisher: Publisher, topic_root: str = "vhub/v1",
        config: SnapshotConfig | None = None, overrides: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        self.storage, self.clock, self.emit_points = storage, clock, emit_points
        self.alerts, self.events, self.lookup, self.publisher = alerts, events, lookup, publisher
        self.topic_root = topic_root.strip("/")
        self.config = config or SnapshotConfig()
        self._cams: dict[str, _Camera] = {}
        self._slots: LatestWinsSlots[_Pending] = LatestWinsSlots(self.config.max_pending_bytes, _size)
        self._waiters = CommandWaiters()
        # Called with (device, command ids, JPEG, ts) for each stored snapshot that answers
        # commands (e.g. the problem ledger's fresh "after" photos); see add_answer_listener.
        self._answer_listeners: list[Callable[[str, frozenset[str], bytes, float], None]] = []
        self._threads: list[threading.Thread] = []
        self._pool: ProcessPoolExecutor | None = None
        self._started_at = 0.0
        self._last_log: dict[tuple[str, str], tuple[float, int]] = {}
        for device_id, values in (overrides or {}).items():
            self.set_thresholds(device_id, values)

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self.storage.start()
        self._started_at = self.clock.now()
        if self.config.executor == "process":
            self._pool = ProcessPoolExecutor(
                self.config.worker_count, mp_context=multiprocessing.get_context("spawn"),
                initializer=single_threaded_opencv,
            )
        else:
            single_threaded_opencv()
        self._slots.reopen()
        for i in range(self.config.worker_count):
            t = threading.Thread(target=self._work, name=f"snapshot-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._slots.close()
        for t in self._threads:
            t.join(10)
        self._threads.clear()
        left = self._slots.drain()
        for _device_id, item in left:  # not analysed: counted, never silent (one log line)
            metrics.snapshots_rejected.labels(SHUTDOWN).inc()
            metrics.messages_rejected.labels("snapshot", SHUTDOWN).inc()
            self._waiters.answer(item.cmd_ids, {"state": "rejected", "reason": SHUTDOWN})
        if left:
            log.warning("%d waiting snapshots were not analysed: the service stopped", len(left))
        self._gauges()
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
        self.storage.stop()

    # --- ingest thread --------------------------------------------------------------------

    def offer(self, msg: InboundMessage) -> None:
        """Cheap checks, then the camera's latest-wins slot. Never blocks, never raises."""
        try:
            self._offer(msg)
        except Exception:  # a bug must not stop ingestion: count it, log it, go on
            log.exception("snapshot from %s: could not be taken in", msg.device_id)
            self._reject(msg.device_id, ANALYSIS_ERROR, "see the traceback above", None)

    def _offer(self, msg: InboundMessage) -> None:
        metrics.snapshots_received.inc()
        checked = inspect_jpeg(msg.payload, max_bytes=self.config.max_bytes, max_pixels=self.config.max_pixels)
        cmd_id = msg.properties.get("cmd_id")
        if isinstance(checked, JpegRejected):
            self._reject(msg.device_id, checked.reason, checked.detail, cmd_id)
            return
        pending = _Pending(msg, checked, self._timestamp(msg), {cmd_id} if cmd_id else set())
        outcome, _ = self._slots.put(msg.device_id, pending, _answer_older_requests_too)
        self._gauges()
        if outcome is Put.OVERLOADED:
            self._reject(msg.device_id, OVERLOADED, f"{self._slots.waiting_bytes} bytes wait already", cmd_id)
        elif outcome is Put.REPLACED:
            metrics.snapshots_superseded.inc()
            metrics.messages_rejected.labels("snapshot", "superseded").inc()

    def _timestamp(self, msg: InboundMessage) -> float:
        raw = msg.properties.get("ts")
        if raw is None:
            return msg.received_at
        try:
            ts = float(raw)
        except ValueError:
            return msg.received_at
        if not math.isfinite(ts) or abs(ts - msg.received_at) > self.config.clock_skew_s:
            metrics.clock_skew.labels("snapshot").inc()
            return msg.received_at
        return ts

    def _reject(self, device_id: str, reason: str, detail: str, cmd_id: str | None = None) -> None:
        metrics.snapshots_rejected.labels(reason).inc()
        metrics.messages_rejected.labels("snapshot", reason).inc()
        key, now = (device_id, reason), self.clock.monotonic()
        last, suppressed = self._last_log.get(key, (-math.inf, 0))
        if now - last >= LOG_EVERY_S:
            more = f" ({suppressed} more since the last line)" if suppressed else ""
            log.warning("snapshot from %s rejected: %s: %s%s", device_id, reason, detail, more)
            self._last_log[key] = (now, 0)
        else:
            self._last_log[key] = (last, suppressed + 1)
        if cmd_id:
            self._waiters.answer({cmd_id}, {"state": "rejected", "reason": reason})

    # --- workers --------------------------------------------------------------------------

    def _work(self) -> None:
        while (taken := self._slots.take()) is not None:
            device_id, item = taken
            self._gauges()
            try:
                self._process(device_id, item)
            except Exception:
                log.exception("snapshot from %s: analysis failed", device_id)
                self._reject(device_id, ANALYSIS_ERROR, "see the traceback above", None)
                self._waiters.answer(item.cmd_ids, {"state": "rejected", "reason": ANALYSIS_ERROR})
            finally:
                self._slots.done(device_id)

    def _analyse(self, data: bytes, info: JpegInfo) -> Analysed | Reject:
        if self._pool is not None:
            return self._pool.submit(analyse_jpeg, data, info).result()
        return analyse_jpeg(data, info)

    def _process(self, device_id: str, item: _Pending) -> None:
        started = time.perf_counter()
        analysed = self._analyse(item.msg.payload, item.info)
        metrics.snapshot_analysis_seconds.observe(time.perf_counter() - started)
        if isinstance(analysed, Reject):
            self._reject(device_id, analysed, "the JPEG body does not decode (cut short or corrupt)", None)
            self._waiters.answer(item.cmd_ids, {"state": "rejected", "reason": analysed.value})
            return
        cam = self._camera(device_id)
        update = cam.health.update(analysed.metrics, cam.thresholds or self.config.thresholds)
        fields: dict[str, Any] = {
            **analysed.metrics.fields(), "health": update.health, "night": update.night,
            "bytes": item.info.size, "width": item.info.width, "height": item.info.height,
        }
        if update.change is not None:
            fields["reference_diff"] = round(update.change, 4)
        if update.frame_diff is not None:
            fields["frame_diff"] = round(update.frame_diff, 3)
        trigger = item.msg.properties.get("trigger")
        if trigger in ("schedule", "motion", "command"):
            fields["trigger"] = trigger
        self.storage.save(
            device_id, item.msg.payload, analysed.thumbnail, ts=item.ts, health=update.health,
            meta=fields, force_history=bool(update.raised or update.cleared),
        )
        cam.last_snapshot_at = item.msg.received_at
        cam.last = {"ts": item.ts, **fields}
        village, group = self.lookup(device_id) or ("", "")
        self.emit_points([Point("snapshot", {"device": device_id, "village": village, "village_group": group},
                                fields, item.ts)])
        metrics.snapshots_analysed.inc()
        self._alerts(device_id, update, item.ts)
        if cam.stale:
            cam.stale = False
            self.alerts.clear_alert(f"camera:{device_id}:stale", item.ts)
        summary = {"device": device_id, "ts": item.ts, "health": update.health, "night": update.night,
                   "url": f"/api/v1/devices/{device_id}/thumbnail"}
        self.events.publish("snapshot", summary)
        self._waiters.answer(item.cmd_ids, {"state": "answered", "snapshot": summary})
        if item.cmd_ids:
            for listener in self._answer_listeners:
                try:
                    listener(device_id, frozenset(item.cmd_ids), item.msg.payload, item.ts)
                except Exception:
                    log.exception("snapshot answer listener failed for %s", device_id)
        self._health_gauges()

    def _alerts(self, device_id: str, update: HealthUpdate, ts: float) -> None:
        for cond in update.raised:
            self.alerts.raise_alert(
                f"camera:{device_id}:{cond.value}", device_id=device_id, type=f"camera_{cond.value}",
                severity=SEVERITY[cond], message=f"摄像头 {device_id}：{_CONDITION_ZH.get(cond.value, cond.value)}", ts=ts,
            )
        for cond in update.cleared:
            self.alerts.clear_alert(f"camera:{device_id}:{cond.value}", ts)

    def _camera(self, device_id: str) -> _Camera:
        cam = self._cams.get(device_id)
        if cam is None:
            cam = self._cams.setdefault(device_id, _Camera())
        return cam

    def _gauges(self) -> None:
        metrics.snapshots_pending.set(self._slots.waiting)
        metrics.snapshots_pending_bytes.set(self._slots.waiting_bytes)

    def _health_gauges(self) -> None:
        counts = dict.fromkeys((*HEALTH_STATES, "stale"), 0)
        for cam in self._cams.copy().values():
            if cam.last_snapshot_at is not None:
                counts[cam.health.health] += 1
            counts["stale"] += cam.stale
        for state, n in counts.items():
            metrics.cameras_by_health.labels(state).set(n)

    # --- commands (PROTOCOL §6 `snapshot`) -------------------------------------------------

    def add_answer_listener(self, listener: Callable[[str, frozenset[str], bytes, float], None]) -> None:
        """`listener(device, command_ids, jpeg, ts)` runs (in a worker) for every stored
        snapshot that answers commands, also after request_snapshot stopped waiting."""
        self._answer_listeners.append(listener)

    def request_snapshot(self, device_id: str, wait_s: float = 0.0, command_id: str | None = None) -> SnapshotRequest:
        """Send the `snapshot` command; with wait_s > 0, wait for the answer (a snapshot with
        user property cmd_id) until it is analysed and stored, or until the timeout.
        `command_id`: the caller's own id (to recognise the answer in an answer listener)."""
        now, cmd_id = self.clock.now(), command_id or uuid.uuid4().hex
        expires_at = now + self.config.command_ttl_s
        waiter = self._waiters.register(cmd_id) if wait_s > 0 else None
        try:
            self.publisher.publish(f"{self.topic_root}/dev/{device_id}/cmd",
                                   snapshot_command(cmd_id, now, self.config.command_ttl_s), qos=1)
            if waiter is None:
                return SnapshotRequest(cmd_id, device_id, "sent", expires_at)
            waiter.event.wait(min(wait_s, self.config.max_wait_s))
        finally:
            self._waiters.discard(cmd_id)
        if waiter.result is None:
            return SnapshotRequest(cmd_id, device_id, "timeout", expires_at)
        return SnapshotRequest(cmd_id, device_id, waiter.result["state"], expires_at, waiter.result.get("snapshot"))

    # --- staleness ------------------------------------------------------------------------

    def check_staleness(
        self, now: float, heartbeat_last_seen: HeartbeatLastSeen, cameras: Iterable[str] = ()
    ) -> list[str]:
        """Flag cameras whose heartbeat is fresh but whose snapshots stopped; clear the others.

        `cameras`: registered camera ids, so a camera that never sent a snapshot since the
        hub started is flagged too. Call it periodically (every minute). Returns the stale ids.
        """
        stale: list[str] = []
        for device_id in set(self._cams.copy()) | set(cameras):
            cam = self._camera(device_id)
            last = cam.last_snapshot_at if cam.last_snapshot_at is not None else self._started_at
            hb = heartbeat_last_seen(device_id)
            is_stale = hb is not None and now - hb <= self.config.heartbeat_fresh_s and now - last > self.config.stale_after_s
            key = f"camera:{device_id}:stale"
            if is_stale and not cam.stale:
                self.alerts.raise_alert(
                    key, device_id=device_id, type="snapshot_stale", severity="warning",
                    message=f"摄像头 {device_id}：心跳正常但 {(now - last) / 60:.0f} 分钟无抓拍图像", ts=now,
                )
            elif cam.stale and not is_stale:
                self.alerts.clear_alert(key, now)
            cam.stale = is_stale
            if is_stale:
                stale.append(device_id)
        self._health_gauges()
        return sorted(stale)

    # --- queries and settings ---------------------------------------------------------------

    def camera_health(self, device_id: str) -> dict[str, Any] | None:
        """The camera's image health, or None when it never sent a snapshot (nor is stale)."""
        cam = self._cams.get(device_id)
        thresholds = dataclasses.asdict(self.thresholds_for(device_id))
        if cam is not None and (cam.last_snapshot_at is not None or cam.stale):
            return {
                "device": device_id, "health": cam.health.health, "stale": cam.stale,
                "active": sorted(c.value for c in cam.health.active),
                "last_snapshot_at": cam.last_snapshot_at, "last": cam.last, "thresholds": thresholds,
            }
        meta = self.storage.latest_meta(device_id) if is_valid_id(device_id) else None
        if meta is None:  # nothing since this start, but a snapshot from before it is on disk
            return None
        return {"device": device_id, "health": meta.get("health", "ok"), "stale": False, "active": [],
                "last_snapshot_at": None, "last": meta, "thresholds": thresholds}

    def all_health(self) -> list[dict[str, Any]]:
        ids = set(self._cams.copy()) | set(self.storage.devices())
        return [h for h in (self.camera_health(i) for i in sorted(ids)) if h is not None]

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
        cam = self._cams.get(device_id)
        return (cam.thresholds if cam else None) or self.config.thresholds

    def set_thresholds(self, device_id: str, overrides: Mapping[str, float]) -> Thresholds:
        """Per-camera overrides of the defaults (ValueError names a bad one)."""
        t = self.config.thresholds.with_overrides(overrides)
        self._camera(device_id).thresholds = t
        return t

    def reset_reference(self, device_id: str) -> None:
        """Forget the camera's reference view (it was re-aimed on purpose); clears `moved`."""
        cam = self._camera(device_id)
        was_moved = Condition.MOVED in cam.health.active
        cam.health.reset_reference()
        if was_moved:
            self.alerts.clear_alert(f"camera:{device_id}:moved", self.clock.now())

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until nothing waits or runs (tests and benchmarks)."""
        return self._slots.wait_idle(timeout)


# Alert texts are for the command center's operators (zh-CN); the API keeps the English state names.
_CONDITION_ZH = {"dark": "画面过暗", "blurred": "画面模糊", "covered": "镜头被遮挡", "frozen": "画面冻结",
                 "moved": "镜头位置偏移"}
