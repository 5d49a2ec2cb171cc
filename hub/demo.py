"""`villagehub demo`: a whole township on one machine with nothing else installed.

Broker (Mosquitto when installed, else the embedded amqtt), the embedded stores (SQLite
unless VH_INFLUX_URL is set), the sample township registered and simulated with a few
faults, a few broadcasts scheduled, the API and the wall screen. Ctrl-C stops it all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from hub.embedded_broker import start_demo_broker
from hub.runtime import Hub, build_services, serve_async
from hub.settings import load_settings

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


def run_demo(*, data_dir: Path | None = None, port: int = 8000, township: Path | None = None,
             time_scale: float = 60.0, broker_kind: str = "auto") -> None:
    logging.basicConfig(level=os.environ.get("VH_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("amqtt", "transitions", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    temp_dir = None
    if data_dir is None:
        temp_dir = tempfile.mkdtemp(prefix="villagehub-demo-")
        data_dir = Path(temp_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    township_file = township or SAMPLE_TOWNSHIP
    token = "vh_demo_" + secrets.token_urlsafe(16)

    external_broker = os.environ.get("VH_MQTT_URL")
    broker = None if external_broker else start_demo_broker(data_dir / "broker", broker_kind)
    mqtt_url = external_broker or (broker.url if broker else "")
    protocol = 5 if (broker is None or broker.mqtt_version == 5) else 311
    settings = load_settings(
        data_dir=data_dir, http_port=port, mqtt_url=mqtt_url, mqtt_protocol=protocol,
        bootstrap_token=token, mqtt_client_id="villagehub-demo",
    )
    services = build_services(settings)
    from hub.registry.township_file import parse_township

    services.registry.import_township(parse_township(township_file.read_text(encoding="utf-8"),
                                                     filename=township_file.name))
    fleet_holder: dict[str, Any] = {}

    def on_ready(hub: Hub) -> None:
        threading.Thread(target=_start_fleet, args=(hub, settings, township_file, protocol, time_scale,
                                                    fleet_holder, token), daemon=True).start()

    async def main() -> None:
        await serve_async(services, on_ready=on_ready)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    finally:
        fleet = fleet_holder.get("fleet")
        if fleet is not None:
            with contextlib.suppress(Exception):
                fleet.stop()
        if broker is not None:
            broker.stop()
        if temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)
        print("demo stopped", flush=True)


def _start_fleet(hub: Hub, settings: Any, township_file: Path, protocol: int, time_scale: float,
                 holder: dict[str, Any], token: str) -> None:
    from device_sim.device import DeviceOptions
    from device_sim.faults import Scenario
    from device_sim.fleet import Fleet, FleetConfig
    from device_sim.township import load_township

    url = f"http://{settings.http_host}:{settings.http_port}"
    print(f"\n  VillageHub demo: wall screen  {url}/?token={token}\n"
          f"  admin token: {token}\n  API: {url}/docs   broker: {settings.mqtt_url}\n"
          "  Ctrl-C stops everything.\n", flush=True)
    hub.services.mqtt.wait_connected(15) if hub.services.mqtt else None
    options = DeviceOptions(root=settings.topic_root, mqtt_version=5 if protocol == 5 else 4,
                            heartbeat_interval_s=15.0, snapshot_interval_s=30.0, width=640, height=360,
                            jpeg_quality=75)
    config = FleetConfig(devices=load_township(township_file), broker_url=settings.mqtt_url, options=options,
                         scenario=Scenario.model_validate({"faults": DEMO_FAULTS}), time_scale=time_scale,
                         connect_rate=100.0)
    fleet = Fleet(config)
    holder["fleet"] = fleet
    fleet.start()
    time.sleep(3)
    _schedule_broadcasts(url, token, settings.zone)
