"""One ingest worker process: `python -m hub.ingest.workerproc <socket> <index>` (started by
`hub.ingest.workers.IngestWorkerPool`; the auth key comes in the environment).

Imports only what it uses: the MQTT receiver, the heartbeat parser, the line-protocol encoder,
the durable writer and the one store backend configured. It talks to the hub process over one
local connection: it receives its `WorkerConfig`, the registry's device tags (again whenever
they change) and `stop`; it sends `ready`, one `batch` (forwarded heartbeats + metric deltas)
per durable batch, and `stopped`. When the hub process goes away, the worker stops as on `stop`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import sys
import threading
from multiprocessing.connection import Client, Connection
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from hub import gcpolicy, threadnames
from hub.clock import Clock, SystemClock
from hub.devices.handlers import Effect, HandlerResult
from hub.devices.heartbeat import Heartbeat
from hub.ingest.mqttrx import MqttReceiver, RxOptions
from hub.ingest.pipeline import Ingest, IngestWorker
from hub.ingest.workers import (
    AUTHKEY_ENV,
    STOP_TIMEOUT_S,
    DeviceTags,
    Forwarded,
    MetricDeltas,
    WorkerConfig,
    forwarded,
)
from hub.logconfig import configure_logging
from hub.messages import InboundMessage
from hub.topics import Topics
from hub.tsdb.base import TimeSeriesStore
from hub.tsdb.writer import DurableWriter

log = logging.getLogger("hub.ingest.worker")

# What a worker holds at once bounds its memory: every message taken is kept (with its parsed
# heartbeat and line) until its batch is durable and acknowledged. The broker keeps the rest.
INBOX_READS = 2  # network reads (up to ~1,000 heartbeats each) waiting for the parser
BATCH_MAX = 1000  # messages per durable batch (VH_WRITE_BATCH_SIZE when smaller)


class _Device:
    """A registry entry as a worker sees it (the fields the pipeline reads)."""

    __slots__ = ("group", "kind", "name", "village")

    def __init__(self, name: str, kind: str, village: str, group: str) -> None:
        self.name = name
        self.kind = kind
        self.village = village
        self.group = group


class WorkerRegistry:
    """The registry as a worker sees it: device tags pushed by the hub process. An unregistered
    device has no entry here (the hub process records it when the heartbeat arrives); its tags
    are the ones that entry will have."""

    def __init__(self) -> None:
        self._base: dict[str, _Device] = {}

    def replace(self, tags: DeviceTags) -> None:
        """Unchanged entries keep their object: the pipeline's per-device caches stay valid
        (they check the entry by identity) and nothing is rebuilt for 10,000 devices."""
        old = self._base
        new: dict[str, _Device] = {}
        for d, t in tags.items():
            dev = old.get(d)
            if dev is None or dev.kind != t[0] or dev.village != t[1] or dev.group != t[2]:
                dev = _Device(d, *t)
            new[d] = dev
        self._base = new

    def get(self, device_id: str) -> _Device | None:
        return self._base.get(device_id)


def _recorded_by_the_hub(device_id: str, kind: str) -> None:
    """A worker records no device: the hub process does, when the heartbeat is forwarded."""


def build_store(cfg: WorkerConfig, clock: Clock) -> TimeSeriesStore:
    """The configured backend (the same choice as `hub.bootstrap.build_store`, from plain values)."""
    if cfg.store_kind == "influx_v2":
        from hub.tsdb.influx_v2 import InfluxV2Store

        assert cfg.influx_url and cfg.influx_token and cfg.influx_org and cfg.influx_bucket
        return InfluxV2Store(cfg.influx_url, cfg.influx_token, cfg.influx_org, cfg.influx_bucket,
                             timeout=cfg.write_timeout_s)
    if cfg.store_kind == "influx_v1":
        from hub.tsdb.influx_v1 import InfluxV1Store

        assert cfg.influx_url
        return InfluxV1Store(cfg.influx_url, cfg.influx_db, cfg.influx_user, cfg.influx_password,
                             retention=cfg.influx_retention, timeout=cfg.write_timeout_s)
    from hub.tsdb.sqlite_store import SqliteStore

    return SqliteStore(Path(cfg.data_dir) / "timeseries.db", retention=cfg.influx_retention, clock=clock)


def run(conn: Connection, index: int) -> None:
    kind, cfg = conn.recv()
    assert kind == "config" and isinstance(cfg, WorkerConfig)
    configure_logging(cfg.log_level, prefix=f"ingest-{index} ")
    send_lock = threading.Lock()

    def send(msg: tuple[Any, ...]) -> None:
        with send_lock:
            conn.send(msg)

    clock = SystemClock()
    writer = DurableWriter(build_store(cfg, clock), Path(cfg.data_dir) / f"spool-ingest-{index}",
                           batch_size=min(cfg.write_batch_size, BATCH_MAX), flush_s=cfg.write_flush_s,
                           max_spool_bytes=cfg.spool_max_bytes, clock=clock)
    registry = WorkerRegistry()
    services = SimpleNamespace(settings=SimpleNamespace(devices=SimpleNamespace(clock_skew_s=cfg.clock_skew_s)), registry=registry,
                               clock=clock, writer=writer, live=None, broadcasts=None, snapshots=None)
    ingest = Ingest(cast(Any, services), note_unregistered=_recorded_by_the_hub)
    outbox: list[Forwarded] = []
    outbox_lock = threading.Lock()

    def forward(run: list[Effect], out: HandlerResult) -> None:
        items = [forwarded(e) for e in run if type(e) is Heartbeat]
        with outbox_lock:
            outbox.extend(items)

    ingest.heartbeat_sink = forward
    deltas = MetricDeltas()

    def after_commit(batch: list[InboundMessage]) -> None:
        with outbox_lock:
            items = outbox[:]
            outbox.clear()
        send(("batch", items, deltas.take()))

    # Each item is one network read: a few are enough to keep the parser busy; more would only
    # hold memory while the broker holds the rest.
    inbox: queue.Queue[list[InboundMessage]] = queue.Queue(max(1, min(INBOX_READS, cfg.ingest_queue_size // 1000)))
    batch_size = min(cfg.write_batch_size, BATCH_MAX)
    receiver = MqttReceiver(
        RxOptions(cfg.mqtt_host, cfg.mqtt_port, cfg.client_id, cfg.mqtt_protocol, cfg.mqtt_username,
                  cfg.mqtt_password, cfg.mqtt_tls, cfg.mqtt_ca_file, session_expiry_s=cfg.mqtt_session_expiry_s),
        Topics(cfg.topic_root), [(cfg.share_filter, 1)], inbox.put, now=clock.now,
    )
    worker = IngestWorker(ingest, inbox, ack_batch=receiver.ack_messages, batch_size=batch_size,
                          flush_s=cfg.write_flush_s, name=f"ingest-{index}", after_commit=after_commit)
    stop = threading.Event()

    def control() -> None:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                log.warning("the hub process went away; stopping")
                stop.set()
                return
            if msg[0] == "tags":
                registry.replace(msg[1])
            elif msg[0] == "stop":
                stop.set()
                return

    first = conn.recv()  # the device tags come before any heartbeat is taken
    if first[0] == "tags":
        registry.replace(first[1])
    gcpolicy.settle()  # wired: what exists now lives as long as the worker
    writer.start()
    worker.start()
    receiver.start()
    threading.Thread(target=control, name="ingest-control", daemon=True).start()
    while not stop.is_set():
        if receiver.subscribed.wait(0.2):
            send(("ready", index))
            break
    stop.wait()
    receiver.accepting.clear()  # from now on messages stay unacknowledged: the broker redelivers
    worker.stop(STOP_TIMEOUT_S - 3)
    receiver.stop(1.0)  # sends the acks of what was made durable, then DISCONNECT
    writer.stop(timeout=2)
    with contextlib.suppress(OSError, ValueError):
        send(("stopped", deltas.take()))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    address, index = args[0], int(args[1])
    threadnames.install()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the hub process decides when workers stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    authkey = bytes.fromhex(os.environ.pop(AUTHKEY_ENV))
    conn = Client(address, family="AF_UNIX", authkey=authkey)
    conn.send(("hello", index))
    try:
        run(conn, index)
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
