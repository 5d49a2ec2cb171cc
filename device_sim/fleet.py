"""A fleet of simulated devices in one process: one network thread, a render pool.

    fleet = Fleet(FleetConfig(broker_url="mqtt://127.0.0.1:1883", devices=from_counts(3, 2)))
    fleet.start(); fleet.wait_connected(timeout=10)
    fleet.fault("cam-0001", "dark")            # or a Scenario timeline
    fleet.speaker("spk-0001").player.played    # what a speaker played
    fleet.light("lamp-0001").lamp.on           # whether a street light is lit
    fleet.stop()
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import resource
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from device_sim.camera import SimCamera
from device_sim.clock import Clock, SceneClock, SystemClock
from device_sim.device import Broker, DeviceOptions, SimDevice, Stats
from device_sim.faults import FAULTS, DeviceRef, Scenario, plan
from device_sim.light import SimLight
from device_sim.loudspeaker import SimSpeaker
from device_sim.netloop import NetLoop
from device_sim.report import RateReporter
from device_sim.township import DeviceSpec

log = logging.getLogger(__name__)
FDS_PER_DEVICE: Final = 1
FD_HEADROOM: Final = 256


def parse_broker_url(url: str) -> Broker:
    """`mqtt://[user:pass@]host[:port]`, `mqtts://` for TLS. The user part is ignored:
    a device's username is always its id; the password is used when a device has none."""
    u = urlsplit(url)
    if u.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ValueError(f"broker URL must be mqtt:// or mqtts://, not {url!r}")
    tls = u.scheme in ("mqtts", "ssl")
    return Broker(host=u.hostname or "127.0.0.1", port=u.port or (8883 if tls else 1883), tls=tls,
                  shared_password=unquote(u.password) if u.password else None)


@dataclass
class FleetConfig:
    devices: list[DeviceSpec]
    broker_url: str = "mqtt://127.0.0.1:1883"
    options: DeviceOptions = field(default_factory=DeviceOptions)
    scenario: Scenario | None = None
    credentials: dict[str, str] = field(default_factory=dict)
    time_scale: float = 1.0  # scene clock speed (day/night); wire times stay true
    scene_start: float | None = None  # Unix s the scene clock starts at (default: now)
    connect_rate: float = 1000.0  # new connections per second at start-up
    render_workers: int = max(1, min(4, os.cpu_count() or 1))
    seed: int = 1
    mqtt3_share: float = 0.0  # this fraction of devices speak MQTT 3.1.1


def raise_fd_limit(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, needed)) if hard != resource.RLIM_INFINITY else max(soft, needed)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < needed:
        log.warning("file descriptor limit %d is below the %d this fleet needs", want, needed)
    return want


class Fleet:
    def __init__(self, config: FleetConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.broker = parse_broker_url(config.broker_url)
        self.stats = Stats()
        self.loop = NetLoop(self.clock)
        self.scene_clock = SceneClock(self.clock, config.time_scale, config.scene_start)
        self.renders = ThreadPoolExecutor(config.render_workers, thread_name_prefix="sim-render")
        rng = random.Random(config.seed)
        self.devices: dict[str, SimDevice] = {}
        for spec in config.devices:
            if spec.id in config.credentials and spec.password is None:
                spec = replace(spec, password=config.credentials[spec.id])
            opts = config.options
            if config.mqtt3_share and rng.random() < config.mqtt3_share:
                opts = DeviceOptions(**{**opts.__dict__, "mqtt_version": 4})
            dev_rng = random.Random(f"{config.seed}:{spec.id}")
            dev: SimDevice
            if spec.kind == "camera":
                dev = SimCamera(spec, opts, self.broker, self.loop, self.clock, self.stats,
                                dev_rng).setup(self.scene_clock, self.renders)
            elif spec.kind == "light":
                dev = SimLight(spec, opts, self.broker, self.loop, self.clock, self.stats,
                               dev_rng).setup(self.scene_clock)
            else:
                dev = SimSpeaker(spec, opts, self.broker, self.loop, self.clock, self.stats,
                                 dev_rng).setup()
            self.devices[spec.id] = dev
        refs = [DeviceRef(d.id, d.kind, d.village, d.group) for d in config.devices]
        self.timeline = plan(config.scenario, refs) if config.scenario else []
        self.reporter = RateReporter(self.stats, self.connected_count, len(self.devices))
        self.started_at: float | None = None

    # -- life cycle -------------------------------------------------------------

    def start(self) -> Fleet:
        raise_fd_limit(len(self.devices) * FDS_PER_DEVICE + FD_HEADROOM)
        self.loop.start()
        self.started_at = self.clock.monotonic()
        rate = max(1.0, self.config.connect_rate)

        def schedule() -> None:
            for i, dev in enumerate(self.devices.values()):
                self.loop.call_later(i / rate, dev.start)
            for sw in self.timeline:
                self.loop.call_later(sw.at, partial(self.devices[sw.device_id].set_fault,
                                                    sw.fault, sw.on, sw.params))
        self.loop.call(schedule)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Every device goes offline cleanly (retained `offline`), then the threads end."""
        if not self.loop.running:
            return
        with contextlib.suppress(Exception):
            self.loop.call(self._stop_devices, timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.connected_count() > 0:
            time.sleep(0.05)
        self.loop.stop()
        self.renders.shutdown(wait=True, cancel_futures=True)

    def _stop_devices(self) -> None:
        for d in self.devices.values():
            d.stop()

    def __enter__(self) -> Fleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- access -----------------------------------------------------------------

    def connected_count(self) -> int:
        return sum(1 for d in self.devices.values() if d.connected.is_set())

    def wait_connected(self, n: int | None = None, timeout: float = 30.0) -> bool:
        """Until `n` devices (all by default) are connected and their command subscription is
        acknowledged: a command published before that would reach no one."""
        want = len(self.devices) if n is None else n
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(1 for d in self.devices.values() if d.connected.is_set() and d.subscribed.is_set()) >= want:
                return True
            time.sleep(0.02)
        return False

    def device(self, device_id: str) -> SimDevice:
        return self.devices[device_id]

    def camera(self, device_id: str) -> SimCamera:
        dev = self.devices[device_id]
        assert isinstance(dev, SimCamera), f"{device_id} is not a camera"
        return dev

    def speaker(self, device_id: str) -> SimSpeaker:
        dev = self.devices[device_id]
        assert isinstance(dev, SimSpeaker), f"{device_id} is not a speaker"
        return dev

    def light(self, device_id: str) -> SimLight:
        dev = self.devices[device_id]
        assert isinstance(dev, SimLight), f"{device_id} is not a street light"
        return dev

    def fault(self, device_id: str, fault: str, on: bool = True, **params: Any) -> None:
        """Switch a fault now (thread-safe); params default as in `faults.FAULTS`."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        merged = {**FAULTS[fault][1], **params}
        dev = self.devices[device_id]
        self.loop.call(lambda: dev.set_fault(fault, on, merged))

    def run(self, fn: Any, timeout: float = 10.0) -> Any:
        """Run `fn()` in the network thread (where device state lives) and return its result."""
        return self.loop.call(fn, timeout)

    def report(self) -> dict[str, Any]:
        return self.reporter.sample()
