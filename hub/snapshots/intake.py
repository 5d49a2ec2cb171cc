"""Taking snapshots in on the ingest thread: cheap JPEG header checks, the capture time,
the camera's latest-wins slot; and the accounting of every rejected snapshot (counted, one
log line per camera and reason per `LOG_EVERY_S`, a waiting request answered)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from hub import metrics
from hub.clock import Clock
from hub.messages import InboundMessage, Rejection
from hub.rejections import RejectionLog
from hub.snapshots.config import SnapshotConfig
from hub.snapshots.jpegheader import JpegInfo, JpegRejected, inspect_jpeg
from hub.snapshots.requests import SnapshotRequests
from hub.snapshots.slots import LatestWinsSlots, Put

log = logging.getLogger(__name__)

LOG_EVERY_S = 60.0  # one log line per device and reason per minute; every rejection is counted
OVERLOADED = "overloaded"
ANALYSIS_ERROR = "analysis_error"
SHUTDOWN = "shutdown"


@dataclass
class Pending:
    """A snapshot waiting in its camera's slot."""

    msg: InboundMessage
    info: JpegInfo
    ts: float
    cmd_ids: set[str]


Slots = LatestWinsSlots[Pending]


def new_slots(max_pending_bytes: int) -> Slots:
    return LatestWinsSlots(max_pending_bytes, _size)


def _size(p: Pending) -> int:
    return p.info.size


def _answer_older_requests_too(new: Pending, old: Pending) -> None:
    new.cmd_ids |= old.cmd_ids  # the newer frame answers the replaced frame's requests too


def slot_gauges(slots: Slots) -> None:
    metrics.snapshots_pending.set(slots.waiting)
    metrics.snapshots_pending_bytes.set(slots.waiting_bytes)


class Rejections:
    """Count (also in `vh_snapshots_rejected_total`), log with the hub's policy (`hub.rejections`,
    on the service's clock) and answer a waiting request."""

    def __init__(self, clock: Clock, requests: SnapshotRequests) -> None:
        self.requests = requests
        self.log = RejectionLog(clock.monotonic, LOG_EVERY_S)

    def reject(self, device_id: str, reason: str, detail: str, cmd_id: str | None = None) -> None:
        metrics.snapshots_rejected.labels(reason).inc()
        self.log.reject(Rejection("snapshot", reason, device_id, detail))
        if cmd_id:
            self.requests.refuse({cmd_id}, reason)

    def superseded(self, device_id: str) -> None:
        """A newer frame took the slot: routine, counted without a log line."""
        metrics.snapshots_superseded.inc()
        self.log.count(Rejection("snapshot", "superseded", device_id))

    def stopped(self, device_id: str, cmd_ids: set[str]) -> None:
        """Not analysed before the service stopped (the caller logs one line for all)."""
        metrics.snapshots_rejected.labels(SHUTDOWN).inc()
        self.log.count(Rejection("snapshot", SHUTDOWN, device_id))
        self.requests.refuse(cmd_ids, SHUTDOWN)


class Intake:
    def __init__(self, *, config: SnapshotConfig, slots: Slots, rejections: Rejections) -> None:
        self.config = config
        self.slots = slots
        self.rejections = rejections

    def offer(self, msg: InboundMessage) -> None:
        """Cheap checks, then the camera's latest-wins slot. Never blocks, never raises."""
        try:
            self._offer(msg)
        except Exception:  # a bug must not stop ingestion: count it, log it, go on
            log.exception("snapshot from %s: could not be taken in", msg.device_id)
            self.rejections.reject(msg.device_id, ANALYSIS_ERROR, "see the traceback above", None)

    def _offer(self, msg: InboundMessage) -> None:
        metrics.snapshots_received.inc()
        checked = inspect_jpeg(msg.payload, max_bytes=self.config.max_bytes, max_pixels=self.config.max_pixels)
        cmd_id = msg.properties.get("cmd_id")
        if isinstance(checked, JpegRejected):
            self.rejections.reject(msg.device_id, checked.reason, checked.detail, cmd_id)
            return
        pending = Pending(msg, checked, self._timestamp(msg), {cmd_id} if cmd_id else set())
        outcome, _ = self.slots.put(msg.device_id, pending, _answer_older_requests_too)
        slot_gauges(self.slots)
        if outcome is Put.OVERLOADED:
            self.rejections.reject(msg.device_id, OVERLOADED,
                                   f"{self.slots.waiting_bytes} bytes wait already", cmd_id)
        elif outcome is Put.REPLACED:
            self.rejections.superseded(msg.device_id)

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
