"""The ingest pipeline: a table from channel to handler, run by worker threads in batches.

Each batch: handlers turn messages into line-protocol lines (and update live state,
alerts, events); the lines are made durable (`DurableWriter.write_durable`); only then
are the batch's QoS 1 messages acknowledged to the broker. A handler never raises out
of the pipeline: an internal error is counted and logged, and the batch goes on.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hub import metrics
from hub.devices.events import ALERTING, CLEARS, DeviceEvent, parse_event
from hub.devices.heartbeat import Heartbeat, heartbeat_point_fields, parse_heartbeat
from hub.devices.presence import Transition
from hub.devices.status import parse_status
from hub.ingest.rejections import RejectionLog
from hub.messages import InboundMessage, Point, Rejection
from hub.tsdb.lineprotocol import encode_line, encode_point, line_head

if TYPE_CHECKING:  # an ingest worker process runs this module without the hub's services
    from hub.services import Services

log = logging.getLogger(__name__)

Handler = Callable[[InboundMessage, list[str]], None]
DEVICE_KINDS = ("camera", "speaker", "light")
_TAG_CACHE_MAX = 200_000

# Metric children used once per heartbeat: `.labels()` costs microseconds, so look them up once.
_HB_ACCEPTED = metrics.messages_accepted.labels(kind="heartbeat")
_HB_SKEW = metrics.clock_skew.labels(kind="heartbeat")


class Ingest:
    """Turns messages into points and state. Thread-safe; used by every ingest worker."""

    def __init__(self, services: Services, *, defer_registration: bool = True) -> None:
        self.s = services
        self.rejections = RejectionLog()
        # Recording a device that publishes unregistered is an SQLite write: done off the hot
        # path (`Registrar`) in the hub process; a worker process's registry is a local dict.
        self._registrar = Registrar(services.registry) if defer_registration else None
        # (device, kind) → (the registry's Device it was built from, tags, heartbeat line head)
        self._series: dict[tuple[str, str], tuple[object, dict[str, str], str]] = {}
        # In the hub process heartbeats update the live state at once; an ingest worker
        # process replaces this with a sink that forwards them to the hub process.
        self.heartbeat_sink: Callable[[Heartbeat, list[str], dict[str, str]], None] = self.apply_heartbeat
        self.handlers: dict[str, Handler] = {
            "heartbeat": self.on_heartbeat,
            "status": self.on_status,
            "event": self.on_event,
            "ack": self.on_ack,
            "snapshot": self.on_snapshot,
        }

    # --- helpers -----------------------------------------------------------------------
    def tags(self, device_id: str, kind: str | None) -> dict[str, str]:
        dev = self.s.registry.get(device_id)
        if dev is None and kind in DEVICE_KINDS:
            if self._registrar is not None:
                self._registrar.note(device_id, kind)  # the tags below are those it will have
            else:
                dev = self.s.registry.note_unregistered(device_id, kind)  # type: ignore[arg-type]
        if dev is None:
            tags = {"device": device_id, "village": "", "village_group": ""}
        else:
            tags = {"device": device_id, "village": dev.village or "", "village_group": dev.group or ""}
        k = kind or (dev.kind if dev else None)
        if k:
            tags["kind"] = k
        return tags

    def heartbeat_series(self, device_id: str, kind: str) -> tuple[dict[str, str], str]:
        """Tags and line head of a device's heartbeats, cached while its registry entry is the same."""
        cached = self._series.get((device_id, kind))
        if cached is not None and cached[0] is self.s.registry.get(device_id):
            return cached[1], cached[2]
        tags = self.tags(device_id, kind)
        head = line_head("heartbeat", tags)
        if len(self._series) >= _TAG_CACHE_MAX:
            self._series.clear()
        self._series[(device_id, kind)] = (self.s.registry.get(device_id), tags, head)
        return tags, head

    def handle(self, msg: InboundMessage, lines: list[str]) -> None:
        handler = self.handlers.get(msg.channel)
        if handler is None:
            self.rejections.reject("topic", "bad_channel", msg.device_id)
            return
        if msg.retain and msg.channel != "status":
            # Only `status` is retained by contract (PROTOCOL §2). The broker replays any other
            # retained message on every (re)subscription: ingesting it would count it again.
            self.rejections.reject(msg.channel, "retained", msg.device_id)
            return
        try:
            handler(msg, lines)
        except Exception as exc:  # never let one message stop ingestion
            metrics.messages_rejected.labels(kind=msg.channel, reason="internal_error").inc()
            log.exception("internal error handling %s from %s: %s", msg.channel, msg.device_id, exc)

    # --- heartbeat ---------------------------------------------------------------------
    def on_heartbeat(self, msg: InboundMessage, lines: list[str]) -> None:
        result = parse_heartbeat(msg.device_id, msg.payload, msg.received_at,
                                 skew_limit_s=self.s.settings.clock_skew_s)
        if not isinstance(result, Heartbeat):
            self.rejections.reject("heartbeat", result.reason, msg.device_id, result.detail)
            return
        for fr in result.rejected:
            self.rejections.reject_field(fr.field, fr.reason, msg.device_id)
        if result.clock_skew_s is not None:
            _HB_SKEW.inc()
        tags, head = self.heartbeat_series(msg.device_id, result.kind)
        fields = heartbeat_point_fields(result) or {"empty": True}
        lines.append(encode_line(head, fields, result.time, "heartbeat"))
        _HB_ACCEPTED.inc()
        self.heartbeat_sink(result, lines, tags)

    def apply_heartbeat(self, hb: Heartbeat, lines: list[str], tags: dict[str, str] | None = None) -> None:
        """The live-state side of a heartbeat: seq gaps, presence, the speaker's state. `tags`
        (the heartbeat's series) are looked up here only when a presence point needs them."""
        outcome = self.s.live.on_heartbeat(hb)
        if outcome.lost:
            metrics.heartbeats_lost.inc(outcome.lost)
        if outcome.transition:
            if tags is None:
                tags = self.heartbeat_series(hb.device_id, hb.kind)[0]
            self.on_transition(outcome.transition, lines, tags)
        if self.s.broadcasts is not None and hb.kind == "speaker":
            self.s.broadcasts.on_speaker_heartbeat(
                hb.device_id, hb.fields.get("state"), hb.fields.get("playing"), hb.received_at
            )

    # --- status / presence -------------------------------------------------------------
    def on_status(self, msg: InboundMessage, lines: list[str]) -> None:
        text = parse_status(msg.device_id, msg.payload)
        if isinstance(text, Rejection):
            self.rejections.reject(text.kind, text.reason, msg.device_id, text.detail)
            return
        t = self.s.live.on_status(msg.device_id, text, msg.received_at)
        if t:
            self.on_transition(t, lines)
        metrics.messages_accepted.labels(kind="status").inc()

    def on_transition(self, t: Transition, lines: list[str], tags: dict[str, str] | None = None) -> None:
        if tags is None:
            dev = self.s.registry.get(t.device_id)
            tags = self.tags(t.device_id, dev.kind if dev else None)
        online = t.status == "online"
        lines.append(encode_point(Point("presence", tags, {"online": online, "reason": t.reason}, t.ts)))
        key = f"offline:{t.device_id}"
        dev = self.s.registry.get(t.device_id)
        name = dev.name if dev and dev.name else t.device_id
        if online:
            self.s.alerts.clear_alert(key, t.ts)
        else:
            why = {"will": "断开连接（遗嘱消息）", "timeout": "心跳超时", "status": "离线"}.get(t.reason, t.reason)
            self.s.alerts.raise_alert(key, device_id=t.device_id, type="offline", severity="warning",
                                      message=f"{name} 离线：{why}", ts=t.ts)
        self.s.bus.publish("presence", {
            "device": t.device_id, "kind": tags.get("kind"), "village": tags.get("village") or None,
            "status": t.status, "reason": t.reason,
        }, t.ts)
        if self.s.broadcasts is not None:
            self.s.broadcasts.on_presence(t.device_id, online, t.ts)

    def sweep(self, now: float) -> list[str]:
        """Presence timeouts; returns the lines to store."""
        lines: list[str] = []
        for t in self.s.live.sweep(now):
            try:
                self.on_transition(t, lines)
            except Exception:
                log.exception("internal error on presence transition of %s", t.device_id)
        return lines

    # --- events ------------------------------------------------------------------------
    def on_event(self, msg: InboundMessage, lines: list[str]) -> None:
        result = parse_event(msg.device_id, msg.payload, msg.received_at,
                             skew_limit_s=self.s.settings.clock_skew_s)
        if not isinstance(result, DeviceEvent):
            self.rejections.reject("event", result.reason, msg.device_id, result.detail)
            return
        self.s.live.touch(msg.device_id, msg.received_at)
        tags = self.tags(msg.device_id, None)
        tags["type"] = result.type
        lines.append(encode_point(Point("event", tags, {"detail": result.detail_json}, result.time)))
        severity = ALERTING.get(result.type)
        dev = self.s.registry.get(msg.device_id)
        name = dev.name if dev and dev.name else msg.device_id
        if severity:
            self.s.alerts.raise_alert(f"{result.type}:{msg.device_id}", device_id=msg.device_id,
                                      type=result.type, severity=severity,
                                      message=f"{name}：{_EVENT_LABELS.get(result.type, result.type)}",
                                      ts=result.time)
        cleared = CLEARS.get(result.type)
        if cleared:
            self.s.alerts.clear_alert(f"{cleared}:{msg.device_id}", result.time)
        self.s.bus.publish("device_event", {"device": msg.device_id, "type": result.type,
                                            "detail": result.detail_json}, result.time)
        metrics.messages_accepted.labels(kind="event").inc()

    # --- acks and snapshots go to their services ----------------------------------------
    def on_ack(self, msg: InboundMessage, lines: list[str]) -> None:
        self.s.live.touch(msg.device_id, msg.received_at)
        if self.s.lights is not None:  # a street-light command's ack (ids `lt-…`); None: not one
            handled = self.s.lights.on_ack(msg.device_id, msg.payload, msg.received_at)
            if handled is not None:
                if handled:
                    metrics.messages_accepted.labels(kind="ack").inc()
                return
        if self.s.broadcasts is None:
            self.rejections.reject("ack", "no_broadcast_service", msg.device_id)
            return
        if self.s.broadcasts.on_ack(msg.device_id, msg.payload, msg.received_at):
            metrics.messages_accepted.labels(kind="ack").inc()

    def on_snapshot(self, msg: InboundMessage, lines: list[str]) -> None:
        self.s.live.touch(msg.device_id, msg.received_at, kind="camera")
        if self.s.snapshots is None:
            self.rejections.reject("snapshot", "no_snapshot_service", msg.device_id)
            return
        self.s.snapshots.offer(msg)


_EVENT_LABELS = {"tamper": "防拆报警", "fault": "设备故障", "power_loss": "断电"}


class Registrar:
    """Records devices that publish without being registered (`Registry.note_unregistered`, one
    SQLite write each) on its own thread, so first-seen devices (10,000 after a broker restart)
    do not stall ingestion. Until then the registry has no entry: the tags used meanwhile are
    the ones the entry will give (no village, no group, the heartbeat's kind)."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry
        self._pending: dict[str, str] = {}  # device → kind, until written
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def note(self, device_id: str, kind: str) -> None:
        with self._lock:
            if device_id in self._pending:
                return
            self._pending[device_id] = kind
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ingest-registrar", daemon=True)
                self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                todo = list(self._pending.items())
            for device_id, kind in todo:
                try:
                    self.registry.note_unregistered(device_id, kind)
                except Exception:  # invalid id, registry closed at shutdown: noted again next time
                    log.debug("could not record unregistered device %s", device_id, exc_info=True)
                with self._lock:
                    self._pending.pop(device_id, None)


class IngestWorker:
    """Two threads: one drains the inbox in batches and handles them; the other makes each
    batch durable and only then acknowledges its QoS 1 messages (in the order received), so
    parsing the next batch overlaps with writing this one."""

    def __init__(
        self,
        ingest: Ingest,
        inbox: queue.Queue[Any],  # InboundMessage, or a list of them (one network read)
        ack: Callable[[int, int], None] | None = None,
        *,
        ack_batch: Callable[[list[InboundMessage]], object] | None = None,
        durable: Callable[[list[str]], object] | None = None,
        batch_size: int = 5000,
        flush_s: float = 0.2,
        name: str = "ingest",
        after_commit: Callable[[list[InboundMessage]], None] | None = None,
    ) -> None:
        self.ingest = ingest
        self.inbox = inbox
        self.ack = ack
        self.ack_batch = ack_batch
        self.durable = durable or ingest.s.writer.write_durable
        self.batch_size = batch_size
        self.flush_s = flush_s
        self.after_commit = after_commit
        self._stop = threading.Event()
        self._commits: queue.Queue[tuple[list[InboundMessage], list[str]] | None] = queue.Queue(maxsize=2)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._committer = threading.Thread(target=self._commit_loop, name=name + "-commit", daemon=True)
        self.batches = 0

    def start(self) -> None:
        self._thread.start()
        self._committer.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish what is queued (bounded by `timeout`), then stop."""
        self._stop.set()
        self._thread.join(timeout)
        self._committer.join(timeout)

    def _drain(self) -> list[InboundMessage]:
        try:
            first = self.inbox.get(timeout=self.flush_s)
        except queue.Empty:
            return []
        batch: list[InboundMessage] = []
        add = batch.extend if isinstance(first, list) else batch.append
        add(first)
        clock = self.ingest.s.clock
        deadline = clock.monotonic() + self.flush_s
        while len(batch) < self.batch_size:
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                if clock.monotonic() >= deadline or self._stop.is_set():
                    break
                try:
                    item = self.inbox.get(timeout=0.01)
                except queue.Empty:
                    continue
            if isinstance(item, list):
                batch.extend(item)
            else:
                batch.append(item)
        return batch

    def _run(self) -> None:
        try:
            while True:
                batch = self._drain()
                if not batch:
                    if self._stop.is_set():
                        return
                    continue
                self._commits.put((batch, self.handle(batch)))
        finally:
            self._commits.put(None)

    def handle(self, batch: list[InboundMessage]) -> list[str]:
        lines: list[str] = []
        for msg in batch:
            self.ingest.handle(msg, lines)
        return lines

    def _commit_loop(self) -> None:
        while True:
            item = self._commits.get()
            if item is None:
                return
            self.commit(*item)

    def commit(self, batch: list[InboundMessage], lines: list[str]) -> None:
        if lines and self.durable(lines) is False:
            # Not durable (stopping with the store away and the spool full): leave the batch
            # unacknowledged so the broker hands it to the next session.
            log.error("%d messages not made durable; left unacknowledged for redelivery", len(batch))
            return
        if self.ack_batch is not None:
            try:
                self.ack_batch(batch)
            except Exception:  # the client may be reconnecting; the broker redelivers
                log.debug("ack of %d messages failed", len(batch), exc_info=True)
        elif self.ack is not None:
            for msg in batch:
                if msg.qos > 0:
                    try:
                        self.ack(msg.mid, msg.qos)
                    except Exception:  # the client may be reconnecting; the broker redelivers
                        log.debug("ack of mid %s failed", msg.mid, exc_info=True)
        if self.after_commit is not None:
            self.after_commit(batch)
        metrics.ingest_queue_depth.set(self.inbox.qsize())
        self.batches += 1

    def process(self, batch: list[InboundMessage]) -> None:
        """Handle and commit one batch in the caller's thread (tests, tools)."""
        self.commit(batch, self.handle(batch))
