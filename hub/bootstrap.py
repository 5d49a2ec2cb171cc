"""The composition root: builds every service from Settings, starts them in order, stops them in reverse.

`build_services(settings, clock)` builds the typed `Services` container, every capability
included; `start_hub` connects MQTT and starts the ingest path; `serve_async` adds the HTTP
server and the periodic sweeps; `run_hub(settings)` is `villagehub serve`. The demo and the
tests call the same code. Ingest worker processes (hub.ingest.workerproc) build only what they use.
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

from hub import gcpolicy, metrics, threadnames
from hub.alerts import AlertBook
from hub.auth import TokenStore
from hub.broadcasts.config import BroadcastConfig
from hub.broadcasts.media import MediaStore
from hub.broadcasts.model import SpeakerRef
from hub.broadcasts.service import BroadcastService
from hub.clock import Clock, SystemClock
from hub.devices.fleet import STATUSES, count_fleet
from hub.devices.livestate import HISTORY_EVERY_S, LiveState
from hub.eventbus import EventBus
from hub.ingest.hubrx import HubReceiver, lean_channels
from hub.ingest.pipeline import Ingest, IngestWorker
from hub.ingest.workers import IngestWorkerPool
from hub.lights.service import LightConfig, LightService
from hub.logconfig import configure_logging
from hub.messages import InboundMessage, Point
from hub.mqtt.client import HubMqttClient, MqttOptions
from hub.mqtt.publisher import CommandPublisher
from hub.ports import PointSink
from hub.preflight import prepare_data_dir
from hub.problems.service import DeviceInfo, Places, ProblemService
from hub.problems.store import ProblemStore
from hub.rankings.service import RankingService, Sources
from hub.registry.store import Registry
from hub.services import MqttLinks, Services
from hub.settings import Settings
from hub.snapshots.config import SnapshotConfig
from hub.snapshots.service import SnapshotService
from hub.snapshots.storage import SnapshotStorage
from hub.topics import INBOUND_CHANNELS, Topics
from hub.tsdb.base import TimeSeriesStore
from hub.tsdb.lineprotocol import encode_points
from hub.tsdb.writer import DurableWriter

log = logging.getLogger("hub")

SWEEP_EVERY_S = 1.0
# Snapshots go stale after minutes (VH_SNAPSHOT_STALE_S, 900 s by default); looking at every
# camera each second cost ~3 % of the hub's CPU under a heartbeat burst (issue 12 profile).
STALENESS_EVERY_S = 10.0
DRAIN_TIMEOUT_S = 6.0


# --- build ------------------------------------------------------------------------------------
def build_store(settings: Settings, clock: Clock) -> TimeSeriesStore:
    kind = settings.influx.store_kind
    if kind == "influx_v2":
        from hub.tsdb.influx_v2 import InfluxV2Store

        assert settings.influx.url and settings.influx.token and settings.influx.org and settings.influx.bucket
        return InfluxV2Store(settings.influx.url, settings.influx.token, settings.influx.org,
                             settings.influx.bucket, timeout=settings.writer.timeout_s)
    if kind == "influx_v1":
        from hub.tsdb.influx_v1 import InfluxV1Store

        assert settings.influx.url
        return InfluxV1Store(settings.influx.url, settings.influx.db, settings.influx.user,
                             settings.influx.password, retention=settings.influx.retention,
                             timeout=settings.writer.timeout_s)
    from hub.tsdb.sqlite_store import SqliteStore

    return SqliteStore(settings.data_dir / "timeseries.db", retention=settings.influx.retention, clock=clock)


def point_sink(writer: DurableWriter) -> PointSink:
    """What services are given for their points: encoded once, buffered by the writer."""

    def emit(points: list[Point]) -> None:
        lines = encode_points(points)
        if lines:
            writer.submit(lines)

    return emit


def _store_state_reporter(clock: Clock, alerts: AlertBook, bus: EventBus) -> Callable[[str, str], None]:
    """The writer's state changes as alerts and `health` events."""

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

    return on_store_state


def build_services(settings: Settings, clock: Clock | None = None, *, spool_name: str = "spool") -> Services:
    """Every service of the hub, built and not yet started (the system clock unless one is given)."""
    clock = clock or SystemClock()
    s, data = settings, settings.data_dir
    prepare_data_dir(data)  # 0700, its contents 0600 (hub.preflight)
    bus = EventBus(clock=clock)
    registry = Registry(data / "registry.db")
    store = build_store(s, clock)

    def village_of(device_id: str) -> str | None:
        dev = registry.get(device_id)
        return dev.village if dev else None

    alerts = AlertBook(data / "hub.db", bus, village_of=village_of)
    tokens = TokenStore(data / "hub.db", s.bootstrap_token, clock=clock)
    writer = DurableWriter(store, data / spool_name, batch_size=s.writer.batch_size, flush_s=s.writer.flush_s,
                           max_spool_bytes=s.writer.spool_max_bytes, clock=clock,
                           on_state=_store_state_reporter(clock, alerts, bus))
    live = LiveState(s.devices.heartbeat_timeout_factor, s.devices.default_interval_s)
    links = MqttLinks()
    emit_points = point_sink(writer)

    def lookup(device_id: str) -> tuple[str, str] | None:
        dev = registry.get(device_id)
        return (dev.village or "", dev.group or "") if dev else None

    snapshots = SnapshotService(
        storage=SnapshotStorage(data / "snapshots"), clock=clock, emit_points=emit_points, alerts=alerts,
        events=bus, lookup=lookup, publisher=links, topic_root=s.topic_root,
        config=SnapshotConfig(max_bytes=s.snapshots.max_bytes, max_pixels=s.snapshots.max_pixels,
                              clock_skew_s=s.devices.clock_skew_s),
    )

    def list_speakers() -> list[SpeakerRef]:
        return [SpeakerRef(d.id, d.village, d.group) for d in registry.devices(kind="speaker")]

    def is_online(device_id: str) -> bool:
        return live.status(device_id) == "online"

    public_url = s.http.public_url or f"http://{s.http.host}:{s.http.port}"
    broadcasts = BroadcastService(
        store_path=data / "broadcasts.db", clock=clock, list_speakers=list_speakers, is_online=is_online,
        publish=links.publish, emit_points=emit_points, alerts=alerts, events=bus,
        config=BroadcastConfig(topic_root=s.topic_root, tz=s.tz, media_base_url=public_url,
                               grace_s=s.broadcasts.grace_s,
                               quiet_hours=s.broadcasts.quiet_hours),
        media=MediaStore(data / "media", public_url),
    )

    def device(device_id: str) -> DeviceInfo | None:
        d = registry.get(device_id)
        return DeviceInfo(d.kind, d.village, d.group) if d is not None else None

    def village_name(village_id: str) -> str | None:
        v = registry.get_village(village_id)
        return v.name if v is not None else None

    def group_village(group_id: str) -> str | None:
        g = registry.get_group(group_id)
        return g.village if g is not None else None

    ledger = ProblemStore(data / "problems.db", data / "problems")
    problems = ProblemService(
        store=ledger, clock=clock, zone=s.zone, places=Places(device, village_name, group_village),
        alerts=alerts, events=bus, emit_points=emit_points, audit=tokens.audit,
        snapshots=snapshots, max_pixels=s.snapshots.max_pixels,
    )
    rankings = RankingService(
        sources=Sources(store=store, alerts=alerts, problems=ledger, broadcasts=lambda: broadcasts.store),
        villages=lambda: [(v.id, v.name) for v in registry.villages()], clock=clock, zone=s.zone,
        weights=s.ranking.weights, alarm_ack_limit_s=s.ranking.alarm_ack_limit_s,
    )
    lights = LightService(
        store_path=data / "lights.db", clock=clock, registry=registry, live=live, publish=links.publish,
        emit_points=emit_points, alerts=alerts, events=bus,
        config=LightConfig(topic_root=s.topic_root, tz=s.tz, lat=s.township.lat, lon=s.township.lon),
    )
    return Services(
        settings=s, clock=clock, topics=Topics(s.topic_root), bus=bus, live=live, alerts=alerts,
        tokens=tokens, registry=registry, store=store, writer=writer, links=links, snapshots=snapshots,
        broadcasts=broadcasts, problems=problems, rankings=rankings, lights=lights,
    )


# --- start / stop -----------------------------------------------------------------------------
@dataclass
class Hub:
    """A running hub: the services plus the threads and tasks that drive them."""

    services: Services
    inbox: queue.Queue[InboundMessage]
    ingest: Ingest
    workers: list[IngestWorker] = field(default_factory=list)
    pool: IngestWorkerPool | None = None  # VH_INGEST_WORKERS > 0
    receiver: HubReceiver | None = None  # heartbeat + ack off paho (0 workers, mqtt://)
    accepting: threading.Event = field(default_factory=threading.Event)
    staleness_checked_at: float = float("-inf")  # the last snapshot-staleness pass (`_sweep`)
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)


def _mqtt_client(services: Services, inbox: queue.Queue[InboundMessage], lean: tuple[str, ...]) -> HubMqttClient:
    s, topics = services.settings, services.topics
    channels = [ch for ch in INBOUND_CHANNELS if not (s.ingest.workers and ch == "heartbeat") and ch not in lean]
    return HubMqttClient(
        MqttOptions(s.mqtt.url, s.mqtt.client_id, s.mqtt.protocol, s.mqtt.session_expiry_s,
                    ca_file=str(s.mqtt.ca_file) if s.mqtt.ca_file else None),
        topics, inbox, [(topics.inbound_filter(ch), 1) for ch in channels], clock=services.clock,
        on_connection_change=lambda up: services.bus.publish("health", {"mqtt": up}),
        unsubscriptions=[topics.inbound_filter(ch) for ch in INBOUND_CHANNELS],
    )


def _command_publisher(settings: Settings) -> CommandPublisher | None:
    s = settings
    n_cmd = s.mqtt.command_clients if s.mqtt.command_clients is not None else (0 if s.mqtt.url.tls else 2)
    if not n_cmd:
        return None
    return CommandPublisher(s.mqtt.url, s.mqtt.client_id, size=n_cmd, protocol=s.mqtt.protocol,
                            ca_file=str(s.mqtt.ca_file) if s.mqtt.ca_file else None)


def start_hub(services: Services) -> Hub:
    """Start everything but the HTTP server (blocking calls; run before the event loop serves)."""
    s, links = services.settings, services.links
    inbox: queue.Queue[InboundMessage] = queue.Queue(s.ingest.queue_size)
    ingest = Ingest(services)
    hub = Hub(services, inbox, ingest)
    services.registry.start()
    try:
        services.store.setup()
    except Exception as exc:  # the writer spools until the store answers
        log.warning("time-series store %s not ready at start (%s); spooling until it answers",
                    services.store.name, exc)
    services.writer.start()
    services.snapshots.start()
    services.broadcasts.start()
    services.problems.start()
    services.lights.start()
    lean = lean_channels(s)
    client = links.client = _mqtt_client(services, inbox, lean)
    links.commands = _command_publisher(s)
    if links.commands is not None:
        links.commands.start()
    metrics.mqtt_connected.set_function(lambda: 1.0 if links.connected else 0.0)
    hub.accepting.set()
    client.accepting = hub.accepting
    worker = IngestWorker(ingest, inbox, client.ack, batch_size=s.writer.batch_size, flush_s=s.writer.flush_s)
    hub.workers.append(worker)
    worker.start()
    if s.ingest.workers:
        hub.pool = IngestWorkerPool(services, ingest, s.ingest.workers)
        hub.pool.start()
    if lean:
        hub.receiver = HubReceiver(services, ingest, lean)
        links.receiver_connected = hub.receiver.receiver.connected
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
    for stop in (s.lights.stop, s.problems.stop, s.broadcasts.stop, s.snapshots.stop):
        try:
            stop()
        except Exception:
            log.exception("stopping a service failed")
    if s.links.commands is not None:
        s.links.commands.stop()
    if s.links.client is not None:
        s.links.client.stop()
    s.writer.stop(timeout=DRAIN_TIMEOUT_S)
    s.registry.stop()
    with contextlib.suppress(Exception):
        s.store.close()
    s.alerts.close()
    s.tokens.close()


# --- serve ------------------------------------------------------------------------------------
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
    now = s.clock.now()
    if now - hub.staleness_checked_at >= STALENESS_EVERY_S:  # every camera: not every second
        hub.staleness_checked_at = now
        cameras = [d.id for d in s.registry.devices(kind="camera")]
        s.snapshots.check_staleness(now, s.live.last_heartbeat, cameras=cameras)
    s.problems.sweep(s.clock.now())  # overdue alerts, the `problems` counts
    s.lights.sweep(s.clock.now())  # offline lamps back, command expiry, street-light alarms


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
                      stop: asyncio.Event | None = None, install_signals: bool = True,
                      settle_gc: bool = False) -> None:
    """With `settle_gc` (a process of its own: `villagehub serve`, the demo), the garbage
    collector is settled once the hub serves (`hub.gcpolicy`); tests running a hub inside
    their own process leave it as it is."""
    from hub.api.app import create_app

    s = services.settings
    threadnames.install()  # `top -H` and the ingest bench see mqtt-rx, tsdb-writer… instead of python3
    loop = asyncio.get_running_loop()
    services.bus.bind(loop)
    hub = await asyncio.to_thread(start_hub, services)
    app = create_app(services)
    config = uvicorn.Config(app, host=s.http.host, port=s.http.port, log_level="warning",
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
        raise RuntimeError(f"the HTTP server could not start on {s.http.host}:{s.http.port}")
    fleet_counts(services)
    if settle_gc:
        gcpolicy.settle()
    log.info("VillageHub listening on http://%s:%d (store: %s, broker: %r)",
             s.http.host, s.http.port, services.store.name, s.mqtt.url)
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


def run_hub(settings: Settings) -> None:
    """`villagehub serve` (the CLI has configured logging)."""
    asyncio.run(serve_async(build_services(settings), settle_gc=True))


__all__ = ["Hub", "build_services", "build_store", "configure_logging", "fleet_counts", "point_sink",
           "run_hub", "serve_async", "start_hub", "stop_hub"]
