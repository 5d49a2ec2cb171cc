"""The analysis runner: worker threads take snapshots from the latest-wins slots (one camera
by one worker at a time, in arrival order, so its health hysteresis sees its frames in
order), decode and analyse them (in a process pool or in the thread), then store each one,
write its point, update the camera's health and alerts and answer waiting requests.

OpenCV and numpy (~55 MB of the hub's memory) are imported by the first snapshot to analyse
(`analysis_function`), not when the hub starts: a hub whose cameras send no snapshots never
loads them. With the process executor the pool's processes import them.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hub import metrics
from hub.messages import Point
from hub.ports import AlertSink, EventSink, PointSink
from hub.snapshots.cameras import Cameras
from hub.snapshots.config import SnapshotConfig
from hub.snapshots.intake import ANALYSIS_ERROR, Pending, Rejections, Slots, slot_gauges
from hub.snapshots.jpegheader import JpegInfo, Reject
from hub.snapshots.ports import Lookup
from hub.snapshots.requests import SnapshotRequests
from hub.snapshots.staleness import snapshot_arrived
from hub.snapshots.storage import SnapshotStorage

if TYPE_CHECKING:
    from hub.snapshots.pipeline import Analysed

log = logging.getLogger(__name__)

Analyse = Callable[[bytes, JpegInfo], "Analysed | Reject"]


@functools.cache
def analysis_function() -> Analyse:
    """`analyse_jpeg`, OpenCV imported and set to one thread on the first call."""
    from hub.snapshots.pipeline import analyse_jpeg, single_threaded_opencv

    single_threaded_opencv()
    return analyse_jpeg


@dataclass(kw_only=True)
class AnalysisRunner:
    config: SnapshotConfig
    slots: Slots
    storage: SnapshotStorage
    cameras: Cameras
    requests: SnapshotRequests
    rejections: Rejections
    lookup: Lookup
    emit_points: PointSink
    alerts: AlertSink
    events: EventSink
    _threads: list[threading.Thread] = field(default_factory=list, init=False)
    _pool: ProcessPoolExecutor | None = field(default=None, init=False)

    def start(self) -> None:
        if self.config.executor == "process":
            from hub.snapshots.pipeline import single_threaded_opencv

            self._pool = ProcessPoolExecutor(
                self.config.worker_count, mp_context=multiprocessing.get_context("spawn"),
                initializer=single_threaded_opencv,
            )
        self.slots.reopen()
        for i in range(self.config.worker_count):
            t = threading.Thread(target=self._work, name=f"snapshot-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self.slots.close()
        for t in self._threads:
            t.join(10)
        self._threads.clear()
        left = self.slots.drain()
        for device_id, item in left:  # not analysed: counted, never silent (one log line)
            self.rejections.stopped(device_id, item.cmd_ids)
        if left:
            log.warning("%d waiting snapshots were not analysed: the service stopped", len(left))
        slot_gauges(self.slots)
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until nothing waits or runs (tests and benchmarks)."""
        return self.slots.wait_idle(timeout)

    def _work(self) -> None:
        while (taken := self.slots.take()) is not None:
            device_id, item = taken
            slot_gauges(self.slots)
            try:
                self._process(device_id, item)
            except Exception:
                log.exception("snapshot from %s: analysis failed", device_id)
                self.rejections.reject(device_id, ANALYSIS_ERROR, "see the traceback above", None)
                self.requests.refuse(item.cmd_ids, ANALYSIS_ERROR)
            finally:
                self.slots.done(device_id)

    def _analyse(self, data: bytes, info: JpegInfo) -> Analysed | Reject:
        if self._pool is not None:
            from hub.snapshots.pipeline import analyse_jpeg

            return self._pool.submit(analyse_jpeg, data, info).result()
        return analysis_function()(data, info)

    def _process(self, device_id: str, item: Pending) -> None:
        started = time.perf_counter()
        analysed = self._analyse(item.msg.payload, item.info)
        metrics.snapshot_analysis_seconds.observe(time.perf_counter() - started)
        if isinstance(analysed, Reject):
            self.rejections.reject(device_id, analysed, "the JPEG body does not decode (cut short or corrupt)", None)
            self.requests.refuse(item.cmd_ids, analysed.value)
            return
        cam = self.cameras.camera(device_id)
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
        self.cameras.raise_and_clear(device_id, update, item.ts)
        snapshot_arrived(cam, device_id, self.alerts, item.ts)
        summary = {"device": device_id, "ts": item.ts, "health": update.health, "night": update.night,
                   "url": f"/api/v1/devices/{device_id}/thumbnail"}
        self.events.publish("snapshot", summary)
        self.requests.answer(device_id, item.cmd_ids, item.msg.payload, item.ts, summary)
        self.cameras.health_gauges()
