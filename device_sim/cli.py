"""`villagehub sim`: run a simulated fleet against any broker.

Mounted by the hub's CLI as `app.add_typer(device_sim.cli.app, name="sim")`; also
runs alone as `python -m device_sim`.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from device_sim.device import DeviceOptions
from device_sim.faults import ScenarioError, load_scenario
from device_sim.fleet import Fleet, FleetConfig
from device_sim.township import TownshipError, from_counts, load_credentials, load_township

app = typer.Typer(help="Simulated cameras, loudspeakers and street lights that behave like field firmware.",
                  add_completion=False, no_args_is_help=False)


def parse_resolution(text: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter("use WIDTHxHEIGHT, e.g. 1280x720") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise typer.BadParameter("width and height must be 16…8192")
    return w, h


@app.callback(invoke_without_command=True)
def sim(
    township: Annotated[Path | None, typer.Option(help="township file (YAML or CSV) to simulate")] = None,
    cameras: Annotated[int, typer.Option(min=0, help="cameras, when no --township")] = 0,
    speakers: Annotated[int, typer.Option(min=0, help="speakers, when no --township")] = 0,
    lights: Annotated[int, typer.Option(min=0, help="street lights, when no --township")] = 0,
    villages: Annotated[int, typer.Option(min=1, help="villages the counted devices spread over")] = 1,
    scenario: Annotated[Path | None, typer.Option(help="fault scenario (YAML/JSON), docs/simulator.md")] = None,
    broker: Annotated[str, typer.Option(envvar="VH_MQTT_URL", help="mqtt://[user:pass@]host:port")] = "mqtt://127.0.0.1:1883",
    topic_root: Annotated[str, typer.Option(envvar="VH_TOPIC_ROOT")] = "vhub/v1",
    credentials: Annotated[Path | None, typer.Option(help="per-device passwords: YAML/JSON map or id:password lines")] = None,
    heartbeat_interval: Annotated[float, typer.Option(min=0.05, help="seconds between heartbeats")] = 30.0,
    snapshot_interval: Annotated[float, typer.Option(min=0.0, help="seconds between snapshots; 0 = on command only")] = 60.0,
    resolution: Annotated[str, typer.Option(help="snapshot size WIDTHxHEIGHT")] = "1280x720",
    jpeg_quality: Annotated[int, typer.Option(min=10, max=100)] = 80,
    mqtt3_share: Annotated[float, typer.Option(min=0.0, max=1.0, help="fraction of devices on MQTT 3.1.1")] = 0.0,
    connect_rate: Annotated[float, typer.Option(min=1.0, help="new connections per second at start")] = 1000.0,
    time_scale: Annotated[float, typer.Option(min=0.001, help="scene clock speed (day/night); wire times stay true")] = 1.0,
    duration: Annotated[float, typer.Option(min=0.0, help="stop after this many seconds; 0 = until Ctrl-C")] = 0.0,
    report_every: Annotated[float, typer.Option(min=0.0, help="print a JSON report line every N s; 0 = never")] = 10.0,
    seed: Annotated[int, typer.Option()] = 1,
    log_level: Annotated[str, typer.Option(envvar="VH_LOG_LEVEL", help="DEBUG, INFO, WARNING or ERROR")] = "WARNING",
) -> None:
    """Run the fleet until --duration or Ctrl-C; report lines are JSON on stdout."""
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        devices = load_township(township) if township else from_counts(cameras, speakers, villages, lights)
        scen = load_scenario(scenario) if scenario else None
        creds = load_credentials(credentials) if credentials else {}
    except (OSError, TownshipError, ScenarioError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    if not devices:
        typer.echo("error: no devices: give --township or --cameras/--speakers/--lights", err=True)
        raise typer.Exit(2)
    width, height = parse_resolution(resolution)
    opts = DeviceOptions(root=topic_root, heartbeat_interval_s=heartbeat_interval,
                         snapshot_interval_s=snapshot_interval, width=width, height=height,
                         jpeg_quality=jpeg_quality)
    try:
        config = FleetConfig(devices=devices, broker_url=broker, options=opts, scenario=scen,
                             credentials=creds, time_scale=time_scale, connect_rate=connect_rate,
                             seed=seed, mqtt3_share=mqtt3_share)
        fleet = Fleet(config)
    except (ValueError, ScenarioError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    stopping = False

    def on_term(_sig: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = signal.signal(signal.SIGTERM, on_term)
    typer.echo(f"simulating {len(devices)} devices against {broker.split('@')[-1]} (Ctrl-C stops)", err=True)
    fleet.start()
    started = time.monotonic()
    next_report = started + report_every if report_every else float("inf")
    try:
        while not stopping and (not duration or time.monotonic() - started < duration):
            time.sleep(0.1)
            if time.monotonic() >= next_report:
                next_report += report_every
                print(json.dumps(fleet.report()), flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        fleet.stop()
        signal.signal(signal.SIGTERM, previous)
    print(json.dumps({"final": True, **fleet.report()}), flush=True)


def main() -> None:
    app(prog_name=os.environ.get("VH_SIM_PROG", "villagehub sim"))
