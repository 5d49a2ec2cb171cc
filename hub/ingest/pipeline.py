"""The ingest pipeline: a table from channel to handler, run by worker threads in batches.

Each batch: the device handlers (`hub.devices.handlers`, pure) turn messages into points,
effects and rejections; the dispatcher (`Ingest`) counts the rejections and applies the effects
in order (live state, presence, alerts, the event bus, the broadcast, street-light and snapshot
services); the points are made durable (`DurableWriter.write_durable`); only then are the
batch's QoS 1 messages acknowledged to the broker. Nothing raises out of the pipeline: an
internal error is counted and logged, and the batch goes on.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hub import metrics
from hub.devices import handlers as h
from hub.devices.handlers import HandlerResult
from hub.devices.heartbeat import Heartbeat
from hub.devices.presence import Transition
from hub.messages import InboundMessage, Rejection
from hub.rejections import REJECTIONS, RejectionLog
from hub.tsdb.lineprotocol import line_head

if TYPE_CHECKING:  # an ingest worker process runs this module without the hub's services
    from hub.services import Services

log = logging.getLogger(__name__)

Handler = Callable[[InboundMessage, HandlerResult], None]
# Applies a run of heartbeats (and the speaker states among them) to the live state.
HeartbeatSink = Callable[[list[h.Effect], HandlerResult], None]
DEVICE_KINDS = ("camera", "speaker", "light")
_TAG_CACHE_MAX = 200_000

# Metric children used once per batch: `.labels()` costs microseconds, so look them up once.
_HB_SKEW = metrics.clock_skew.labels(kind="heartbeat")
_ACCEPTED: dict[str, Any] = {}
_HEARTBEAT_RUN = (Heartbeat, h.SpeakerState)


def _accepted(kind: str) -> Any:
    child = _ACCEPTED.get(kind)
    if child is None:
        child = _ACCEPTED[kind] = metrics.messages_accepted.labels(kind=kind)
    return child


class Ingest:
    """The dispatcher: runs the handlers, counts rejections, applies effects. Thread-safe; used
    by every ingest worker. `note_unregistered(device, kind)` records a device that publishes
    without being registered; by default a `Registrar` does it off the hot path."""

    def __init__(self, services: Services, *, note_unregistered: Callable[[str, str], None] | None = None,
                 rejections: RejectionLog = REJECTIONS) -> None:
        self.s = services
        self.rejections = rejections
        self._note = note_unregistered or Registrar(services.registry).note
        # (device, kind) → (the registry's Device it was built from, tags, heartbeat line head)
        self._series: dict[tuple[str, str], tuple[object, dict[str, str], str]] = {}
        # In the hub process heartbeats update the live state; an ingest worker process replaces
        # this with a sink that forwards them to the hub process.
        self.heartbeat_sink: HeartbeatSink = self.apply_heartbeats
        self.handlers: dict[str, Handler] = {
            "heartbeat": lambda msg, out: h.on_heartbeat(msg, out, self, self.s.settings.devices.clock_skew_s),
            "status": h.on_status,
            "event": lambda msg, out: h.on_event(msg, out, self, self.s.settings.devices.clock_skew_s),
            "ack": h.on_ack,
            "snapshot": h.on_snapshot,
        }

    # --- the directory the handlers look devices up in (no I/O) -----------------------------
    def tags(self, device_id: str, kind: str | None) -> dict[str, str]:
        dev = self.s.registry.get(device_id)
        if dev is None:
            if kind in DEVICE_KINDS:
                self._note(device_id, kind)  # the tags below are those it will have
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

    def name(self, device_id: str) -> str:
        dev = self.s.registry.get(device_id)
        return dev.name if dev is not None and dev.name else device_id

    # --- handling -----------------------------------------------------------------------------
    def handle(self, msg: InboundMessage, out: HandlerResult) -> None:
        """Run the message's handler into `out` (nothing applied yet: see `finish`)."""
        handler = self.handlers.get(msg.channel)
        if handler is None:
            out.rejections.append(Rejection("topic", "bad_channel", msg.device_id))
            return
        if msg.retain and msg.channel != "status":
            # Only `status` is retained by contract (PROTOCOL §2). The broker replays any other
            # retained message on every (re)subscription: ingesting it would count it again.
            out.rejections.append(Rejection(msg.channel, "retained", msg.device_id))
            return
        try:
            handler(msg, out)
        except Exception as exc:  # never let one message stop ingestion
            out.rejections.append(Rejection(msg.channel, "internal_error", msg.device_id, repr(exc)))
            log.exception("internal error handling %s from %s: %s", msg.channel, msg.device_id, exc)

    def handle_batch(self, batch: list[InboundMessage]) -> list[str]:
        """Handle every message, apply the effects; the points to store."""
        out = HandlerResult()
        handle = self.handle
        for msg in batch:
            handle(msg, out)
        self.finish(out)
        return out.points

    def finish(self, out: HandlerResult) -> None:
        """Count the rejections, apply the effects in order, then count what was accepted."""
        reject = self.rejections.reject
        for r in out.rejections:
            reject(r)
        self.apply(out.effects, out)
        if out.clock_skewed:
            _HB_SKEW.inc(out.clock_skewed)
        for kind, n in out.accepted.items():
            _accepted(kind).inc(n)

    # --- applying effects -----------------------------------------------------------------
    def apply(self, effects: list[h.Effect], out: HandlerResult) -> None:
        i, n = 0, len(effects)
        while i < n:
            e = effects[i]
            if type(e) is Heartbeat:  # a run of heartbeats: the live state's lock taken once
                j = i + 1
                while j < n and type(effects[j]) in _HEARTBEAT_RUN:
                    j += 1
                try:
                    self.heartbeat_sink(effects[i:j], out)
                except Exception:
                    log.exception("internal error applying %d heartbeats", j - i)
                i = j
                continue
            try:
                self.apply_one(e, out)
            except Exception:
                log.exception("internal error applying %s", type(e).__name__)
            i += 1

    def apply_heartbeats(self, run: list[h.Effect], out: HandlerResult) -> None:
        """Heartbeats into the live state (seq gaps, presence); speaker states to the broadcast
        service, in order. Tags are looked up only when a presence point needs them."""
        outcomes = iter(self.s.live.on_heartbeats([e for e in run if type(e) is Heartbeat]))
        lost = 0
        for e in run:
            try:
                if type(e) is Heartbeat:
                    outcome = next(outcomes)
                    lost += outcome.lost
                    if outcome.transition:
                        self.on_transition(outcome.transition, out, self.heartbeat_series(e.device_id, e.kind)[0])
                else:
                    self.apply_one(e, out)
            except Exception:
                log.exception("internal error applying a heartbeat of %s", getattr(e, "device_id", "?"))
        if lost:
            metrics.heartbeats_lost.inc(lost)

    def apply_one(self, e: h.Effect, out: HandlerResult) -> None:
        s = self.s
        # the most frequent first: speaker states (every speaker heartbeat), then a presence change's
        if isinstance(e, h.SpeakerState):
            if s.broadcasts is not None:
                s.broadcasts.on_speaker_heartbeat(e.device_id, e.state, e.playing, e.ts)
        elif isinstance(e, h.ClearAlert):
            s.alerts.clear_alert(e.key, e.ts)
        elif isinstance(e, h.BusEvent):
            s.bus.publish(e.type, e.data, e.ts)
        elif isinstance(e, h.PresenceChanged):
            if s.broadcasts is not None:
                s.broadcasts.on_presence(e.device_id, e.online, e.ts)
        elif isinstance(e, h.Touched):
            s.live.touch(e.device_id, e.ts, kind=e.kind)
        elif isinstance(e, h.StatusSeen):
            transition = s.live.on_status(e.device_id, e.status, e.ts)
            if transition:
                self.on_transition(transition, out)
        elif isinstance(e, h.RaiseAlert):
            s.alerts.raise_alert(e.key, device_id=e.device_id, type=e.type, severity=e.severity,
                                 message=e.message, ts=e.ts)
        elif isinstance(e, h.AckReceived):
            self._ack(e.msg)
        elif isinstance(e, h.SnapshotReceived):
            if s.snapshots is None:
                self.rejections.reject(Rejection("snapshot", "no_snapshot_service", e.msg.device_id))
            else:
                s.snapshots.offer(e.msg)
        else:  # a heartbeat
            self.heartbeat_sink([e], out)

    def _ack(self, msg: InboundMessage) -> None:
        s = self.s
        if s.lights is not None:  # a street-light command's ack (ids `lt-…`); None: not one
            handled = s.lights.on_ack(msg.device_id, msg.payload, msg.received_at)
            if handled is not None:
                if handled:
                    _accepted("ack").inc()
                return
        if s.broadcasts is None:
            self.rejections.reject(Rejection("ack", "no_broadcast_service", msg.device_id))
            return
        if s.broadcasts.on_ack(msg.device_id, msg.payload, msg.received_at):
            _accepted("ack").inc()

    # --- presence ---------------------------------------------------------------------------
    def on_transition(self, t: Transition, out: HandlerResult, tags: dict[str, str] | None = None) -> None:
        if tags is None:
            dev = self.s.registry.get(t.device_id)
            tags = self.tags(t.device_id, dev.kind if dev else None)
        effects: list[h.Effect] = []
        h.presence_effects(t, tags, self.name(t.device_id), out.points, effects)
        self.apply(effects, out)

    def sweep(self, now: float) -> list[str]:
        """Presence timeouts; returns the lines to store."""
        out = HandlerResult()
        for t in self.s.live.sweep(now):
            try:
                self.on_transition(t, out)
            except Exception:
                log.exception("internal error on presence transition of %s", t.device_id)
        return out.points


class Registrar:
    """Records devices that publish without being registered (`Registry.note_unregistered_many`:
    everything pending in one SQLite transaction) on its own thread, so first-seen devices (10,000 after a broker restart)
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
                todo = dict(self._pending)
            try:  # all pending in one transaction (a burst of 10,000 is one commit)
                refused = self.registry.note_unregistered_many(todo)
                if refused:
                    log.debug("not recorded (invalid id or kind): %s", refused[:10])
            except Exception:  # registry closed at shutdown: noted again next time
                log.debug("could not record %d unregistered devices", len(todo), exc_info=True)
            with self._lock:
                for device_id in todo:
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
        return self.ingest.handle_batch(batch)

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
