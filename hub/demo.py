"""`villagehub demo`: a whole township on one machine with nothing else installed.

Broker (Mosquitto when installed, else the embedded amqtt), the embedded stores (SQLite
unless VH_INFLUX_URL is set), the sample township registered and simulated with a few
faults, a few broadcasts scheduled, the API and the wall screen. Ctrl-C stops it all:
the simulator first, then the hub, then the broker.

Settings come from the environment like every command (VH_HTTP_PORT, VH_HTTP_HOST,
VH_DATA_DIR, VH_BOOTSTRAP_TOKEN, VH_MQTT_URL, ...); flags override them. The demo fills in
only what the operator did not set: a temp data dir, a generated admin token, its own broker.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from hub.bootstrap import Hub, build_services, serve_async
from hub.embedded_broker import start_demo_broker
from hub.preflight import http_port_problem, prepare_data_dir
from hub.settings import Settings, load_settings

log = logging.getLogger("hub.demo")

SAMPLE_TOWNSHIP = Path(__file__).parent / "data" / "township.yaml"

DEMO_FAULTS: list[dict[str, Any]] = [
    {"fault": "dark", "share": 0.02, "kind": "camera", "at": 5},
    {"fault": "blurred", "share": 0.02, "kind": "camera", "at": 5},
    {"fault": "covered", "share": 0.01, "kind": "camera", "at": 20, "duration": 600},
    {"fault": "frozen", "share": 0.01, "kind": "camera", "at": 10},
    {"fault": "moved", "share": 0.01, "kind": "camera", "at": 60},
    {"fault": "offline_unclean", "share": 0.02, "at": 40},
    {"fault": "flapping", "share": 0.01, "kind": "speaker", "at": 30},
    {"fault": "drop_heartbeats", "share": 0.03, "at": 0},
    {"fault": "malformed", "share": 0.01, "at": 15, "params": {"every": 5}},
    {"fault": "speaker_fault", "share": 0.01, "kind": "speaker", "at": 50},
    {"fault": "power_loss", "share": 0.01, "at": 90},
    {"fault": "lamp_fault", "share": 0.06, "kind": "light", "at": 20},  # a few failed street lamps
    {"fault": "lamp_fault", "share": 0.03, "kind": "light", "at": 35, "params": {"code": "driver"}},
    {"fault": "battery_dying", "share": 0.2, "kind": "light", "at": 10},  # acts on solar lamps only
]


def _demo_broadcasts(zone: Any) -> list[dict[str, Any]]:
    now = datetime.now(zone)
    soon = (now + timedelta(minutes=2)).replace(second=0, microsecond=0)
    tomorrow_morning = (now + timedelta(days=1)).replace(hour=7, minute=30, second=0, microsecond=0)
    return [
        {"title": "冬季防火提醒", "priority": 3, "volume": 70, "repeat": 1,
         "media": {"type": "tts", "text": "天干物燥，小心火烛。请大家注意用火用电安全。", "lang": "zh"},
         "targets": {"all": True, "villages": [], "groups": [], "devices": []}},
        {"title": "村务公开通知", "priority": 2, "volume": 60, "repeat": 1,
         "media": {"type": "tts", "text": "本周六上午九点在村委会召开村民代表大会，请各位代表准时参加。", "lang": "zh"},
         "targets": {"all": True, "villages": [], "groups": [], "devices": []},
         "schedule": {"start": soon.isoformat()}},
        {"title": "每日早间广播", "priority": 1, "volume": 60, "repeat": 1,
         "media": {"type": "tts", "text": "早上好，今天天气晴，气温零下二度到八度。", "lang": "zh"},
         "targets": {"all": True, "villages": [], "groups": [], "devices": []},
         "schedule": {"start": tomorrow_morning.isoformat(), "rrule": "FREQ=DAILY;COUNT=30"}},
    ]


def _schedule_broadcasts(base_url: str, token: str, zone: Any) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
        for body in _demo_broadcasts(zone):
            try:
                r = client.post("/api/v1/broadcasts", json=body)
            except httpx.HTTPError as exc:
                log.warning("demo broadcast %s not scheduled: %s", body["title"], exc)
                continue
            if r.status_code == 404:
                return  # this build has no broadcasts yet
            if r.status_code >= 300:
                log.warning("demo broadcast %s refused: %s %s", body["title"], r.status_code, r.text[:200])


class DemoError(Exception):
    """The demo cannot start; the message is one line for the operator."""


GENERATED_TOKEN_PREFIX = "vh_demo_"


def demo_settings(flags: dict[str, Any]) -> tuple[Settings, set[str]]:
    """The settings as the operator gave them: flags over `VH_*` (and `VH_CONFIG`) over defaults.

    Returns them with the names the operator set (flag, environment or file); the demo fills
    in only the others (a temp data dir, a generated token, its own broker and client id)."""
    settings = load_settings(**flags)
    return settings, set(settings.given) | set(flags)


def run_demo(flags: dict[str, Any] | None = None, *, township: Path | None = None,
             time_scale: float = 60.0, broker_kind: str = "auto") -> None:
    """`flags`: settings given on the command line (`data_dir`, `http_port`, `http_host`)."""
    flags = dict(flags or {})
    given_settings, given = demo_settings(flags)  # SettingsError: the caller prints it
    problem = http_port_problem(given_settings.http.host, given_settings.http.port,
                                flag="--port or VH_HTTP_PORT")
    if problem:
        raise DemoError(problem)
    township_file = township or SAMPLE_TOWNSHIP
    if not township_file.is_file():
        raise DemoError(f"--township {township_file}: no such file")

    chosen: dict[str, Any] = {}
    temp_dir = None
    if "data_dir" not in given:
        temp_dir = tempfile.mkdtemp(prefix="villagehub-demo-")
        chosen["data_dir"] = Path(temp_dir)
    own_token = "bootstrap_token" not in given or not given_settings.bootstrap_token
    if own_token:
        chosen["bootstrap_token"] = GENERATED_TOKEN_PREFIX + secrets.token_urlsafe(32)
    if "mqtt_client_id" not in given:
        chosen["mqtt_client_id"] = "villagehub-demo"
    broker = None
    try:
        if "mqtt_url" not in given:
            data_dir = prepare_data_dir(chosen.get("data_dir") or given_settings.data_dir)
            try:
                broker = start_demo_broker(data_dir / "broker", broker_kind)
            except RuntimeError as exc:
                raise DemoError(f"the demo's MQTT broker could not start: {exc}") from None
            chosen["mqtt_url"] = broker.url
            chosen["mqtt_protocol"] = 5 if broker.mqtt_version == 5 else 311
        settings = load_settings(**{**flags, **chosen})
        _run(settings, township_file, time_scale, own_token)
    finally:
        if broker is not None:
            broker.stop()  # after the simulator and the hub: no device sees its broker vanish
        if temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)
    print("demo stopped", flush=True)


def _run(settings: Settings, township_file: Path, time_scale: float, own_token: bool) -> None:
    services = build_services(settings)
    from hub.registry.township_file import parse_township

    services.registry.import_township(parse_township(township_file.read_text(encoding="utf-8"),
                                                     filename=township_file.name))
    from hub.problems.demo_seed import start_seeding

    seeding = start_seeding(services)  # past weeks of presence, alerts, problems, broadcasts (docs/problems.md)
    fleet = _FleetHolder()

    def on_ready(hub: Hub) -> None:
        threading.Thread(target=_start_fleet, args=(hub, settings, township_file, time_scale, fleet,
                                                    own_token), daemon=True).start()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()

        async def shutdown() -> None:
            # The simulator first (its devices say `offline` and disconnect), the history seeding,
            # then the hub (serve_async), then the broker (run_demo): nothing is left talking to
            # a dead peer.
            await asyncio.to_thread(fleet.stop)
            await asyncio.to_thread(seeding.stop)  # before the stores it writes to close
            stop.set()

        shutting_down: list[asyncio.Task[None]] = []

        def on_signal() -> None:
            if not shutting_down:  # a second Ctrl-C while stopping changes nothing
                shutting_down.append(loop.create_task(shutdown()))

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        await serve_async(services, on_ready=on_ready, stop=stop, install_signals=False,
                          settle_gc=True)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:  # Ctrl-C before the handlers were installed
        pass
    finally:
        fleet.stop()
        seeding.stop()


class _FleetHolder:
    """The simulated fleet, started from a thread once the hub is ready; stopped at most once,
    and never started after a stop was asked for."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.fleet: Any = None
        self.stopping = False
        self.stopped = False

    def start(self, make: Callable[[], Any]) -> bool:
        with self.lock:
            if self.stopping or self.stopped:
                return False
            self.fleet = make()
            self.fleet.start()
            return True

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
            if self.stopped:
                return
            self.stopped = True
            fleet = self.fleet
        if fleet is not None:
            try:
                fleet.stop()
            except Exception:
                log.exception("stopping the simulated devices failed")


def _start_fleet(hub: Hub, settings: Settings, township_file: Path, time_scale: float,
                 holder: _FleetHolder, own_token: bool) -> None:
    from device_sim.device import DeviceOptions
    from device_sim.faults import Scenario
    from device_sim.fleet import Fleet, FleetConfig
    from device_sim.township import load_township

    token = settings.bootstrap_token or ""
    url = f"http://{settings.http.host}:{settings.http.port}"
    if own_token:
        wall, admin = f"{url}/?token={token}", token
    else:  # the operator's own secret: never printed
        wall, admin = f"{url}/?token=<your VH_BOOTSTRAP_TOKEN>", "your VH_BOOTSTRAP_TOKEN (not shown)"
    print(f"\n  VillageHub demo: wall screen  {wall}\n"
          f"  admin token: {admin}\n  API: {url}/docs   broker: {settings.mqtt.url!r}\n"
          f"  data: {settings.data_dir}\n  Ctrl-C stops everything.\n", flush=True)
    if hub.services.mqtt:
        hub.services.mqtt.wait_connected(15)
    protocol = settings.mqtt.protocol
    options = DeviceOptions(root=settings.topic_root, mqtt_version=5 if protocol == 5 else 4,
                            heartbeat_interval_s=15.0, snapshot_interval_s=30.0, width=640, height=360,
                            jpeg_quality=75)
    config = FleetConfig(devices=load_township(township_file), broker_url=settings.mqtt.url.raw, options=options,
                         scenario=Scenario.model_validate({"faults": DEMO_FAULTS}), time_scale=time_scale,
                         connect_rate=100.0)
    if not holder.start(lambda: Fleet(config)):
        return
    time.sleep(3)
    if not holder.stopping:
        _schedule_broadcasts(url, token, settings.zone)
