"""Ingest worker processes: heartbeats spread over N processes with an MQTT shared subscription.

One Python process tops out near 10k heartbeats/s here (paho's network thread and parsing
share one GIL). With `VH_INGEST_WORKERS=N` the hub starts N processes; each subscribes to
`$share/<client id>/<root>/dev/+/heartbeat` (the broker spreads messages over them), parses,
writes its own batches durably (own spool), acknowledges, and forwards the validated
heartbeats to the hub process, which keeps presence, seq accounting and the live state.
Metric counters of the workers are forwarded as deltas and added to the hub's own.

Seq-gap accounting in this mode assumes a device's consecutive heartbeats are not reordered
across workers — true in the field, where they are `interval_s` apart.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import queue
import signal
import threading
from multiprocessing.synchronize import Event as MpEvent
from typing import Any

from hub import metrics
from hub.heartbeat import Heartbeat
from hub.messages import InboundMessage
from hub.services import Services
from hub.settings import Settings

log = logging.getLogger(__name__)

FORWARD_QUEUE_SIZE = 1000  # batches in flight from the workers to the hub process
STOP_TIMEOUT_S = 8.0

MetricDelta = tuple[str, tuple[tuple[str, str], ...], float]


def shared_heartbeat_filter(settings: Settings) -> str:
    return f"$share/{settings.mqtt_client_id}/{settings.topic_root}/dev/+/heartbeat"


# --- metric forwarding ------------------------------------------------------------------------
class MetricDeltas:
    """Counter and gauge values of this process, as deltas since the last call."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    def take(self) -> list[MetricDelta]:
        out: list[MetricDelta] = []
        for family in metrics.REGISTRY.collect():
            if family.type not in ("counter", "gauge"):
                continue
            for sample in family.samples:
                if family.type == "counter" and not sample.name.endswith("_total"):
                    continue
                key = (family.name, tuple(sorted(sample.labels.items())))
                delta = sample.value - self._last.get(key, 0.0)
                if delta:
                    self._last[key] = sample.value
                    out.append((family.name, key[1], delta))
        return out


_GAUGES_FROM_WORKERS = frozenset({"vh_points_spooled", "vh_spool_bytes"})


def apply_deltas(deltas: list[MetricDelta]) -> None:
    by_name = _metric_objects()
    for name, labels, delta in deltas:
        metric = by_name.get(name)
        if metric is None:
            continue
        kind = type(metric).__name__
        if kind == "Gauge" and name not in _GAUGES_FROM_WORKERS:
            continue  # per-process gauges (queue depth, connected) stay the hub's own
        target = metric.labels(**dict(labels)) if labels else metric
        target.inc(delta)


_OBJECTS: dict[str, Any] = {}


def _metric_objects() -> dict[str, Any]:
    if not _OBJECTS:
        for value in vars(metrics).values():
            name = getattr(value, "_name", None)
            if name and type(value).__name__ in ("Counter", "Gauge"):
                _OBJECTS[name] = value
    return _OBJECTS


# --- the worker process -----------------------------------------------------------------------
def worker_main(settings_doc: dict[str, Any], index: int, out: Any, stop: MpEvent) -> None:
    """Entry point of one ingest worker process (spawned)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the hub process decides when workers stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from hub.ingest.pipeline import Ingest, IngestWorker
    from hub.mqtt.client import HubMqttClient, MqttOptions
    from hub.runtime import build_services

    settings = Settings(**settings_doc)
    from hub.runtime import configure_logging

    configure_logging(settings.log_level, prefix=f"ingest-{index} ")
    services = build_services(settings, spool_name=f"spool-ingest-{index}")
    services.registry.start()
    services.writer.start()
    ingest = Ingest(services)
    outbox: list[Heartbeat] = []
    outbox_lock = threading.Lock()

    def forward(hb: Heartbeat, lines: list[str], tags: dict[str, str]) -> None:
        with outbox_lock:
            outbox.append(hb)

    ingest.heartbeat_sink = forward
    deltas = MetricDeltas()

    def after_commit(batch: list[InboundMessage]) -> None:
        with outbox_lock:
            items = outbox[:]
            outbox.clear()
        out.put(("batch", index, items, deltas.take()))

    inbox: queue.Queue[InboundMessage] = queue.Queue(settings.ingest_queue_size)
    client = HubMqttClient(
        MqttOptions(settings.mqtt, f"{settings.mqtt_client_id}-ingest-{index}", settings.mqtt_protocol,
                    settings.mqtt_session_expiry_s,
                    ca_file=str(settings.mqtt_ca_file) if settings.mqtt_ca_file else None),
        services.topics, inbox, [(shared_heartbeat_filter(settings), 1)], clock=services.clock, will=False,
    )
    accepting = threading.Event()
    accepting.set()
    client.accepting = accepting
    worker = IngestWorker(ingest, inbox, client.ack, batch_size=settings.write_batch_size,
                          flush_s=settings.write_flush_s, name=f"ingest-{index}", after_commit=after_commit)
    worker.start()
    client.start()
    if client.subscribed.wait(60):
        out.put(("ready", index, [], []))
    stop.wait()
    accepting.clear()
    worker.stop(STOP_TIMEOUT_S - 2)
    client.stop()
    services.writer.stop(timeout=2)
    services.registry.stop()
    out.put(("stopped", index, [], deltas.take()))


# --- the pool, in the hub process ---------------------------------------------------------------
class IngestWorkerPool:
    def __init__(self, services: Services, ingest: Any, count: int) -> None:
        self.services = services
        self.ingest = ingest
        self.count = count
        self._ctx = mp.get_context("spawn")
        self._out: Any = self._ctx.Queue(FORWARD_QUEUE_SIZE)
        self._stop: MpEvent = self._ctx.Event()
        self._procs: list[Any] = []
        self._reader = threading.Thread(target=self._read, name="ingest-fan-in", daemon=True)
        self._stopped: set[int] = set()
        self._ready: set[int] = set()
        self.ready = threading.Event()

    def start(self) -> None:
        doc = self.services.settings.model_dump(mode="json")
        for i in range(self.count):
            p = self._ctx.Process(target=worker_main, args=(doc, i, self._out, self._stop),
                                  name=f"villagehub-ingest-{i}", daemon=True)
            p.start()
            self._procs.append(p)
        self._reader.start()
        log.info("started %d ingest worker processes (shared subscription %s)", self.count,
                 shared_heartbeat_filter(self.services.settings))

    def _read(self) -> None:
        while len(self._stopped) < self.count:
            try:
                kind, index, heartbeats, deltas = self._out.get(timeout=0.5)
            except queue.Empty:
                if self._stop.is_set() and not any(p.is_alive() for p in self._procs):
                    return
                continue
            except (EOFError, OSError):
                return
            try:
                self._apply(heartbeats, deltas)
            except Exception:
                log.exception("could not apply a batch from ingest worker %s", index)
            if kind == "stopped":
                self._stopped.add(index)
            elif kind == "ready":
                self._ready.add(index)
                if len(self._ready) == self.count:
                    self.ready.set()

    def _apply(self, heartbeats: list[Heartbeat], deltas: list[MetricDelta]) -> None:
        lines: list[str] = []
        for hb in sorted(heartbeats, key=lambda h: h.received_at):
            self.ingest.apply_heartbeat(hb, lines)
        if lines:
            self.services.writer.submit(lines)
        if deltas:
            apply_deltas(deltas)

    def stop(self) -> None:
        self._stop.set()
        for p in self._procs:
            p.join(STOP_TIMEOUT_S)
            if p.is_alive():
                log.warning("ingest worker %s did not stop in time; terminating it", p.name)
                p.terminate()
                p.join(2)
        self._reader.join(2)
        with contextlib.suppress(Exception):
            self._out.close()
