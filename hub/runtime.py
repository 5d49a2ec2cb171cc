"""The composition root: builds every service from Settings, starts them in order, stops them in reverse.

`run_hub(settings)` is `villagehub serve`; the demo and the tests call the same code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from hub import metrics
from hub.alerts import AlertBook
from hub.auth import TokenStore
from hub.clock import Clock, SystemClock
from hub.eventbus import EventBus
from hub.ingest.hubrx import HubReceiver, lean_channels
from hub.ingest.pipeline import Ingest, IngestWorker
from hub.devices.fleet import STATUSES, count_fleet
from hub.devices.livestate import HISTORY_EVERY_S, LiveState
from hub.messages import InboundMessage
from hub.preflight import prepare_data_dir
from hub.mqtt.client import HubMqttClient, MqttOptions
from hub.registry.store import Registry
from hub.services import Services
from hub.settings import Settings
from hub.topics import INBOUND_CHANNELS, Topics
from hub.tsdb.base import TimeSeriesStore
from hub.tsdb.writer import DurableWriter

log = logging.getLogger("hub")

SWEEP_EVERY_S = 1.0
DRAIN_TIMEOUT_S = 6.0


def build_store(settings: Settings) -> TimeSeriesStore:
    kind = settings.store_kind
    if kind == "influx_v2":
        from hub.tsdb.influx_v2 import InfluxV2Store

        assert settings.influx_url and settings.influx_token and settings.influx_org and settings.influx_bucket
        return InfluxV2Store(settings.influx_url, settings.influx_token, settings.influx_org,
                             settings.influx_bucket, timeout=settings.write_timeout_s)
    if kind == "influx_v1":
        from hub.tsdb.influx_v1 import InfluxV1Store

        assert settings.influx_url
        return InfluxV1Store(settings.influx_url, settings.influx_db, settings.influx_user,
                             settings.influx_password, retention=settings.influx_retention,
                             timeout=settings.write_timeout_s)
    from hub.tsdb.sqlite_store import SqliteStore

    return SqliteStore(settings.data_dir / "timeseries.db", retention=settings.influx_retention)


@dataclass
class Hub:
    """A running hub: the services plus the threads and tasks that drive them."""

    services: Services
    inbox: queue.Queue[InboundMessage]
    ingest: Ingest
    workers: list[IngestWorker] = field(default_factory=list)
    pool: Any = None  # hub.ingest.workers.IngestWorkerPool when VH_INGEST_WORKERS > 0
    receiver: Any = None  # hub.ingest.hubrx.HubReceiver: heartbeat + ack off paho (0 workers, mqtt://)
    accepting: threading.Event = field(default_factory=threading.Event)
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)


def build_services(settings: Settings, clock: Clock | None = None, *, spool_name: str = "spool") -> Services:
    clock = clock or SystemClock()
    data = settings.data_dir
    prepare_data_dir(data)  # 0700, its contents 0600 (hub.preflight)
    bus = EventBus(clock=clock)
    registry = Registry(data / "registry.db")
    store = build_store(settings)
    alerts = AlertBook(data / "hub.db", bus, village_of=lambda d: (registry.get(d).village if registry.get(d) else None))  # type: ignore[union-attr]
    tokens = TokenStore(data / "hub.db", settings.bootstrap_token)

    def on_store_state(state: str, message: str) -> None:
        now = clock.now()
        if state == "ok":
            alerts.clear_alert("store:spooling", now)
            alerts.clear_alert("store:spool_full", now)
        elif state == "spooling":
            alerts.raise_alert("store:spooling", device_id=None, type="store", severity="warning",
                               message=f"时序数据库不可达，数据暂存本地：{message}", ts=now)
        elif state == "spool_full":
            alerts.raise_alert("store:spool_full", device_id=None, type="store", severity="critical",
                               message=f"本地暂存已满：{message}", ts=now)
        elif state == "dead_letter":
            alerts.raise_alert("store:dead_letter", device_id=None, type="store", severity="warning",
                               message=f"时序数据库拒收部分数据：{message}", ts=now)
        bus.publish("health", {"store": state == "ok", "store_state": state, "message": message}, now)

    writer = DurableWriter(
        store,
        data / spool_name,
        batch_size=settings.write_batch_size,
        flush_s=settings.write_flush_s,
        max_spool_bytes=settings.spool_max_bytes,
        clock=clock,
        on_state=on_store_state,
    )
    live = LiveState(settings.heartbeat_timeout_factor, settings.default_interval_s)
    return Services(
        settings=settings, clock=clock, topics=Topics(settings.topic_root), bus=bus, live=live,
        alerts=alerts, tokens=tokens, registry=registry, store=store, writer=writer,
    )


def _attach_optional_services(services: Services) -> None:
    """Snapshot and broadcast services, when their packages are present."""
    try:
        from hub.wiring import attach_optional_services
    except ModuleNotFoundError:
        return
    attach_optional_services(services)


def start_hub(services: Services) -> Hub:
    """Start everything but the HTTP server (blocking calls; run before the event loop serves)."""
    s = services.settings
    _attach_optional_services(services)
    inbox: queue.Queue[InboundMessage] = queue.Queue(s.ingest_queue_size)
    ingest = Ingest(services)
    hub = Hub(services, inbox, ingest)
    services.registry.start()
    try:
        services.store.setup()
    except Exception as exc:  # the writer spools until the store answers
        log.warning("time-series store %s not ready at start (%s); spooling until it answers",
                    services.store.name, exc)
    services.writer.start()
    for name in ("snapshots", "broadcasts", "problems", "lights"):
        svc = getattr(services, name)
        if svc is not None and hasattr(svc, "start"):
            svc.start()
    lean = lean_channels(s)
    channels = [ch for ch in INBOUND_CHANNELS if not (s.ingest_workers and ch == "heartbeat") and ch not in lean]
    subs = [(services.topics.inbound_filter(ch), 1) for ch in channels]
    client = HubMqttClient(
        MqttOptions(s.mqtt, s.mqtt_client_id, s.mqtt_protocol, s.mqtt_session_expiry_s,
                    ca_file=str(s.mqtt_ca_file) if s.mqtt_ca_file else None),
        services.topics, inbox, subs, clock=services.clock,
        on_connection_change=lambda up: services.bus.publish("health", {"mqtt": up}),
        unsubscriptions=[services.topics.inbound_filter(ch) for ch in INBOUND_CHANNELS],
    )
    services.mqtt = client
    n_cmd = s.mqtt_command_clients if s.mqtt_command_clients is not None else (0 if s.mqtt.tls else 2)
    if n_cmd:
        from hub.mqtt.publisher import CommandPublisher

        services.commands = CommandPublisher(
            s.mqtt, s.mqtt_client_id, size=n_cmd, protocol=s.mqtt_protocol,
            ca_file=str(s.mqtt_ca_file) if s.mqtt_ca_file else None)
        services.commands.start()
    hub.accepting.set()
    client.accepting = hub.accepting
    worker = IngestWorker(ingest, inbox, client.ack, batch_size=s.write_batch_size, flush_s=s.write_flush_s)
    hub.workers.append(worker)
    worker.start()
    if s.ingest_workers:
        from hub.ingest.workers import IngestWorkerPool

        hub.pool = IngestWorkerPool(services, ingest, s.ingest_workers)
        hub.pool.start()
    if lean:
        hub.receiver = HubReceiver(services, ingest, lean)
        hub.receiver.start()
    client.start()
    services.started_at = services.clock.now()
    return hub


def stop_hub(hub: Hub) -> None:
    """Graceful stop: stop taking messages, drain and acknowledge what was taken, flush, disconnect."""
    s = hub.services
    hub.accepting.clear()
    if hub.receiver is not None:
        hub.receiver.stop_taking()
    if hub.pool is not None:
        hub.pool.stop()
    for w in hub.workers:
        w.stop(DRAIN_TIMEOUT_S)
    if hub.receiver is not None:
        hub.receiver.stop(DRAIN_TIMEOUT_S)
    for name in ("lights", "problems", "broadcasts", "snapshots"):
        svc = getattr(s, name)
        if svc is not None and hasattr(svc, "stop"):
            with contextlib.suppress(Exception):
                svc.stop()
    if s.commands is not None:
        s.commands.stop()
    if s.mqtt is not None:
        s.mqtt.stop()
    s.writer.stop(timeout=DRAIN_TIMEOUT_S)
    s.registry.stop()
    with contextlib.suppress(Exception):
        s.store.close()
    s.alerts.close()
    s.tokens.close()


async def _periodic(every: float, fn: Callable[[], None], name: str) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await asyncio.to_thread(fn)
        except Exception:
            log.exception("periodic task %s failed", name)


def _sweep(hub: Hub) -> None:
    s = hub.services
    lines = hub.ingest.sweep(s.clock.now())
    if lines:
        s.writer.submit(lines)
    snaps = s.snapshots
    if snaps is not None and hasattr(snaps, "check_staleness"):
        cameras = [d.id for d in s.registry.devices(kind="camera")]
        snaps.check_staleness(s.clock.now(), s.live.last_heartbeat, cameras=cameras)
    if s.problems is not None:  # overdue alerts, the `problems` counts
        s.problems.sweep(s.clock.now())
    if s.lights is not None:  # offline lamps back, command expiry, street-light alarms
        s.lights.sweep(s.clock.now())


def fleet_counts(services: Services) -> dict[str, int]:
    """Counts for the 24 h history; sets the `devices_by_status` gauges (`hub.devices.fleet`)."""
    counts = count_fleet(services.registry.devices(), services.live.statuses())
    for kind, by_status in counts.by_kind.items():
        for status in STATUSES:
            metrics.devices_by_status.labels(kind=kind, status=status).set(by_status[status])
    return counts.summary()


def _record_history(hub: Hub) -> None:
    s = hub.services
    s.live.record_history(s.clock.now(), fleet_counts(s))


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the hub stops its services first."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_async(services: Services, *, on_ready: Callable[[Hub], None] | None = None,
                      stop: asyncio.Event | None = None, install_signals: bool = True) -> None:
    from hub.api.app import create_app

    s = services.settings
    loop = asyncio.get_running_loop()
    services.bus.bind(loop)
    hub = await asyncio.to_thread(start_hub, services)
    app = create_app(services)
    config = uvicorn.Config(app, host=s.http_host, port=s.http_port, log_level="warning",
                            lifespan="off", access_log=False, ws_ping_interval=20)
    server = _Server(config)
    stop = stop or asyncio.Event()
    if install_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
    hub._tasks = [
        asyncio.create_task(_periodic(SWEEP_EVERY_S, lambda: _sweep(hub), "presence sweep")),
        asyncio.create_task(_periodic(HISTORY_EVERY_S, lambda: _record_history(hub), "history")),
    ]
    serve_task = asyncio.create_task(server.serve())
    while not server.started and not serve_task.done():
        await asyncio.sleep(0.02)
    if serve_task.done():
        await asyncio.to_thread(stop_hub, hub)
        serve_task.result()
        raise RuntimeError(f"the HTTP server could not start on {s.http_host}:{s.http_port}")
    fleet_counts(services)
    log.info("VillageHub listening on http://%s:%d (store: %s, broker: %r)",
             s.http_host, s.http_port, services.store.name, s.mqtt)
    if on_ready:
        on_ready(hub)
    stop_wait = asyncio.create_task(stop.wait())
    await asyncio.wait([serve_task, stop_wait], return_when=asyncio.FIRST_COMPLETED)
    log.info("stopping VillageHub")
    server.should_exit = True
    for t in hub._tasks:
        t.cancel()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(serve_task, 5)
    await asyncio.to_thread(stop_hub, hub)
    stop_wait.cancel()
    log.info("VillageHub stopped")


def configure_logging(level: str, prefix: str = "") -> None:
    logging.basicConfig(level=level.upper(), format=f"%(asctime)s %(levelname)s {prefix}%(name)s: %(message)s")
    for noisy in ("httpx", "httpcore", "amqtt", "transitions", "multipart"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_hub(settings: Settings) -> None:
    configure_logging(settings.log_level)
    services = build_services(settings)
    asyncio.run(serve_async(services))


