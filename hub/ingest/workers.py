"""Ingest worker processes: heartbeats spread over N processes with an MQTT shared subscription.

One Python process tops out near 10k heartbeats/s here (one GIL for receiving, parsing and
the rest of the hub). With `VH_INGEST_WORKERS=N` the hub starts N processes
(`python -m hub.ingest.workerproc`); each subscribes to
`$share/<client id>/<root>/dev/+/heartbeat` (the broker spreads messages over them) with the
lean receiver of `hub.ingest.mqttrx`, parses, writes its own batches durably (own spool),
acknowledges only then, and forwards the validated heartbeats to the hub process, which keeps
presence, seq accounting, the live state and the registry of unregistered devices. Metric
counters of the workers are forwarded as deltas and added to the hub's own.

A worker imports only what it uses (no FastAPI, OpenCV, pydantic, SQLite stores): it gets a
plain `WorkerConfig` and the registry's device tags (pushed by the hub whenever they change,
checked every `TAGS_EVERY_S`) over a local authenticated socket
(`multiprocessing.connection`). The process is started directly, not by `multiprocessing`'s
spawn, which would import the hub's `__main__` (the CLI, pydantic, typer) into every worker.

Seq-gap accounting in this mode assumes a device's consecutive heartbeats are not reordered
across workers — true in the field, where they are `interval_s` apart.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection, Listener
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hub import metrics
from hub.devices.handlers import Effect, HandlerResult, heartbeat_effects
from hub.devices.heartbeat import Heartbeat

if TYPE_CHECKING:
    from hub.services import Services
    from hub.settings import Settings

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 8.0
TAGS_EVERY_S = 2.0
AUTHKEY_ENV = "VH_INGEST_WORKER_AUTHKEY"

MetricDelta = tuple[str, tuple[tuple[str, str], ...], float]
# A heartbeat as forwarded: (device, kind, time, received_at, fields, seq, interval_s, clock_skew_s)
Forwarded = tuple[str, str, float, float, dict[str, Any], int | None, float | None, float | None]
DeviceTags = dict[str, tuple[str, str, str]]  # device id → (kind, village, group)


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """What a worker process needs from Settings (plain values: no pydantic in the worker)."""

    index: int
    mqtt_host: str
    mqtt_port: int
    mqtt_tls: bool
    mqtt_username: str | None
    mqtt_password: str | None
    mqtt_ca_file: str | None
    mqtt_protocol: int
    mqtt_session_expiry_s: int
    client_id: str
    share_filter: str
    topic_root: str
    store_kind: str
    influx_url: str | None
    influx_db: str
    influx_user: str | None
    influx_password: str | None
    influx_token: str | None
    influx_org: str | None
    influx_bucket: str | None
    influx_retention: str
    write_timeout_s: float
    data_dir: str
    write_batch_size: int
    write_flush_s: float
    spool_max_bytes: int
    clock_skew_s: float
    ingest_queue_size: int
    log_level: str


def shared_heartbeat_filter(settings: Settings) -> str:
    return f"$share/{settings.mqtt.client_id}/{settings.topic_root}/dev/+/heartbeat"


def worker_config(settings: Settings, index: int) -> WorkerConfig:
    m = settings.mqtt.url
    return WorkerConfig(
        index=index, mqtt_host=m.host, mqtt_port=m.port, mqtt_tls=m.tls, mqtt_username=m.username,
        mqtt_password=m.password, mqtt_ca_file=str(settings.mqtt.ca_file) if settings.mqtt.ca_file else None,
        mqtt_protocol=settings.mqtt.protocol, mqtt_session_expiry_s=settings.mqtt.session_expiry_s,
        client_id=f"{settings.mqtt.client_id}-ingest-{index}", share_filter=shared_heartbeat_filter(settings),
        topic_root=settings.topic_root, store_kind=settings.influx.store_kind, influx_url=settings.influx.url,
        influx_db=settings.influx.db, influx_user=settings.influx.user, influx_password=settings.influx.password,
        influx_token=settings.influx.token, influx_org=settings.influx.org, influx_bucket=settings.influx.bucket,
        influx_retention=settings.influx.retention, write_timeout_s=settings.writer.timeout_s,
        data_dir=str(settings.data_dir), write_batch_size=settings.writer.batch_size,
        write_flush_s=settings.writer.flush_s, spool_max_bytes=settings.writer.spool_max_bytes,
        clock_skew_s=settings.devices.clock_skew_s, ingest_queue_size=settings.ingest.queue_size,
        log_level=settings.log_level,
    )


def forwarded(hb: Heartbeat) -> Forwarded:
    return (hb.device_id, hb.kind, hb.time, hb.received_at, hb.fields, hb.seq, hb.interval_s, hb.clock_skew_s)


def heartbeat_of(f: Forwarded) -> Heartbeat:
    return Heartbeat(f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], ())


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


# --- the pool, in the hub process ---------------------------------------------------------------
class _Link:
    """The hub's end of one worker's connection (sends are serialised)."""

    def __init__(self, index: int, conn: Connection) -> None:
        self.index = index
        self.conn = conn
        self.lock = threading.Lock()

    def send(self, msg: tuple[Any, ...]) -> bool:
        with self.lock:
            try:
                self.conn.send(msg)
                return True
            except (OSError, ValueError):
                return False


class IngestWorkerPool:
    def __init__(self, services: Services, ingest: Any, count: int) -> None:
        self.services = services
        self.ingest = ingest
        self.count = count
        self.ready = threading.Event()
        self._dir = Path(tempfile.mkdtemp(prefix="vh-ingest-"))
        self._authkey = os.urandom(32)
        self._listener = Listener(str(self._dir / "s"), family="AF_UNIX", authkey=self._authkey)
        self._procs: list[subprocess.Popen[bytes]] = []
        self._links: dict[int, _Link] = {}
        self._ready: set[int] = set()
        self._stopped: set[int] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._tags: DeviceTags = {}
        self._apply_lock = threading.Lock()

    def start(self) -> None:
        # Few malloc arenas: a worker's threads hand buffers to each other, and per-thread arenas
        # would each keep their own high-water mark of freed memory (measured: ~60 MB per worker).
        env = {"MALLOC_ARENA_MAX": "2", **os.environ, AUTHKEY_ENV: self._authkey.hex()}
        for i in range(self.count):
            self._procs.append(subprocess.Popen(
                [sys.executable, "-m", "hub.ingest.workerproc", str(self._dir / "s"), str(i)],
                env=env, stdin=subprocess.DEVNULL,
            ))
        for target, name in ((self._accept, "ingest-accept"), (self._push_tags, "ingest-tags")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        log.info("started %d ingest worker processes (shared subscription %s)", self.count,
                 shared_heartbeat_filter(self.services.settings))

    # -- connections ---------------------------------------------------------------------------
    def _accept(self) -> None:
        settings = self.services.settings
        while len(self._links) < self.count and not self._stopping.is_set():
            try:
                conn = self._listener.accept()
                hello = conn.recv()
            except (OSError, EOFError, ValueError):
                if self._stopping.is_set():
                    return
                log.exception("an ingest worker could not connect")
                continue
            index = int(hello[1])
            link = _Link(index, conn)
            link.send(("config", worker_config(settings, index)))
            with self._lock:
                self._links[index] = link
                tags = self._tags
            link.send(("tags", tags or self._current_tags()))
            t = threading.Thread(target=self._read, args=(link,), name=f"ingest-fan-in-{index}", daemon=True)
            t.start()
            self._threads.append(t)

    def _read(self, link: _Link) -> None:
        while True:
            try:
                msg = link.conn.recv()
            except (EOFError, OSError):
                if not self._stopping.is_set():
                    log.error("ingest worker %s went away", link.index)
                return
            kind = msg[0]
            try:
                if kind == "batch":
                    self._apply(msg[1], msg[2])
                elif kind == "ready":
                    with self._lock:
                        self._ready.add(link.index)
                        if len(self._ready) == self.count:
                            self.ready.set()
                elif kind == "stopped":
                    self._apply([], msg[1])
                    with self._lock:
                        self._stopped.add(link.index)
                    return
            except Exception:
                log.exception("could not apply a batch from ingest worker %s", link.index)

    def _apply(self, heartbeats: list[Forwarded], deltas: list[MetricDelta]) -> None:
        out = HandlerResult()
        ingest = self.ingest
        known = self.services.registry.get
        run: list[Effect] = []
        for f in heartbeats:
            if known(f[0]) is None:
                ingest.tags(f[0], f[1])  # notes the unregistered device (recorded off this thread)
            heartbeat_effects(heartbeat_of(f), run)
        with self._apply_lock:  # one worker's batch at a time: presence transitions stay ordered
            if run:
                ingest.apply(run, out)  # tags looked up only for a presence point
        if out.points:
            self.services.writer.submit(out.points)
        if deltas:
            apply_deltas(deltas)

    # -- registry tags ---------------------------------------------------------------------------
    def _current_tags(self) -> DeviceTags:
        return {d.id: (d.kind, d.village or "", d.group or "") for d in self.services.registry.devices()}

    def _push_tags(self) -> None:
        while not self._stopping.wait(TAGS_EVERY_S):
            try:
                tags = self._current_tags()
            except Exception:
                log.exception("could not read the registry for the ingest workers")
                continue
            with self._lock:
                if tags == self._tags:
                    continue
                self._tags = tags
                links = list(self._links.values())
            for link in links:
                link.send(("tags", tags))

    # -- stop --------------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            links = list(self._links.values())
        for link in links:
            link.send(("stop",))
        for p in self._procs:
            try:
                p.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log.warning("ingest worker %s did not stop in time; terminating it", p.pid)
                p.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(2)
        for t in self._threads:
            if t is not threading.current_thread() and t.name.startswith("ingest-fan-in"):
                t.join(2)
        with contextlib.suppress(OSError):
            self._listener.close()
        for link in links:
            with contextlib.suppress(OSError):
                link.conn.close()
        shutil.rmtree(self._dir, ignore_errors=True)
