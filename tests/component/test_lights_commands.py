"""Light commands against a real Mosquitto: the LightService sends §6 commands to simulated lamps
(device_sim, firmware-like), routes their acks back and tracks each lamp's delivery."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from device_sim import DeviceSpec
from hub.alerts import AlertBook
from hub.clock import SystemClock
from hub.devices.livestate import LiveState
from hub.lights.service import LightConfig, LightService, Targets
from hub.messages import Point
from hub.registry.model import Device, Township, Village
from hub.registry.store import Registry
from tests.component.test_sim_support import Recorder, recording, running_fleet
from tests.servers import MosquittoServer

pytestmark = pytest.mark.component


def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@dataclass
class Events:
    items: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, type_: str, data: dict[str, Any], ts: float | None = None) -> None:
        with self.lock:
            self.items.append((type_, data))

    def states(self, device: str) -> list[str]:
        with self.lock:
            return [d["state"] for t, d in self.items if t == "light_command" and d["device"] == device]


class HubSide:
    """The service with a real MQTT publisher and an ack subscriber that feeds `on_ack`."""

    def __init__(self, port: int, tmp: Path, lamps: list[str]) -> None:
        self.registry = Registry(tmp / "registry.db")
        self.registry.import_township(Township(None, [Village("v1", "一村", 31.0, 114.4)], [], [
            Device(d, "light", f"路灯{d}", "v1", None, 31.0, 114.4) for d in lamps]))
        self.live = LiveState()
        self.points: list[Point] = []
        self.events = Events()
        self.alerts = AlertBook(tmp / "hub.db")
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"hub-{id(self)}", protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        ready = threading.Event()
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("vhub/v1/dev/+/ack", qos=1)
        self.client.loop_start()
        assert ready.wait(5)
        self.answers: list[bool | None] = []
        self.service = LightService(
            store_path=tmp / "lights.db", clock=SystemClock(), registry=self.registry, live=self.live,
            publish=lambda topic, payload: self.client.publish(topic, payload, qos=1),
            emit_points=self.points.extend, alerts=self.alerts, events=self.events, config=LightConfig())
        self.service.start()

    def _on_message(self, _c: Any, _u: Any, m: mqtt.MQTTMessage) -> None:
        self.answers.append(self.service.on_ack(m.topic.split("/")[3], bytes(m.payload), time.time()))

    def online(self, device: str) -> None:
        self.live.on_status(device, "online", time.time())

    def delivery_state(self, batch_id: str, device: str) -> tuple[str, str | None]:
        found = self.service.batch(batch_id)
        assert found is not None
        d = next(x for x in found[1] if x.device == device)
        return d.state, d.reason or None

    def close(self) -> None:
        self.service.stop()
        self.client.disconnect()
        self.client.loop_stop()
        self.registry.close()
        self.alerts.close()


@pytest.fixture
def hubside(mosquitto: MosquittoServer, tmp_path: Path) -> Iterator[HubSide]:
    h = HubSide(mosquitto.port, tmp_path, ["lamp-c1", "lamp-c2", "lamp-c3"])
    yield h
    h.close()


def lamp_cmds(rec: Recorder, dev: str) -> list[dict[str, Any]]:
    return [m.json() for m in rec.of(dev, "cmd")]


def test_on_dim_off_reach_the_lamp_and_each_delivery_ends_done(hubside: HubSide, mosquitto: MosquittoServer) -> None:
    dev = "lamp-c1"
    with recording(mosquitto.port) as rec, running_fleet(mosquitto.url, [DeviceSpec(dev, "light")]) as fleet:
        hubside.online(dev)
        lamp = fleet.light(dev).lamp
        for action, level, lit, want_level in (("on", 60, True, 60), ("dim", 25, True, 25), ("off", None, False, 25)):
            batch, _ = hubside.service.command(Targets(devices=(dev,)), action, by="op", level=level)
            wait_for(lambda b=batch.id: hubside.delivery_state(b, dev)[0] == "done")  # type: ignore[misc]
            assert fleet.run(lambda: (lamp.lit, lamp.level, lamp.mode)) == (lit, want_level, "manual")
            assert hubside.events.states(dev)[-3:] == ["sent", "received", "done"]
        cmds = lamp_cmds(rec, dev)
        assert [c["action"] for c in cmds] == ["on", "dim", "off"]
        for m in rec.of(dev, "cmd"):  # the §6 envelope as the wire carries it
            body = m.json()
            assert m.qos == 1 and not m.retain and body["id"].startswith("lt-") and len(body["id"]) <= 64
            assert body["expires_at"] - body["ts"] == pytest.approx(300, abs=1)
        assert cmds[0]["level"] == 60 and "level" not in cmds[2]
        stored = [p for p in hubside.points if p.measurement == "light_command"]
        assert {p.fields["state"] for p in stored} == {"sent", "received", "done"}
        assert stored[0].tags == {"device": dev, "village": "v1", "village_group": "", "action": "on"}
        assert all(a is True for a in hubside.answers)


def test_a_faulty_lamp_acks_failed_with_its_fault(hubside: HubSide, mosquitto: MosquittoServer) -> None:
    dev = "lamp-c2"
    with running_fleet(mosquitto.url, [DeviceSpec(dev, "light")]) as fleet:
        hubside.online(dev)
        fleet.fault(dev, "lamp_fault", code="driver")
        wait_for(lambda: fleet.run(lambda: fleet.light(dev).lamp.fault) == "driver")
        batch, _ = hubside.service.command(Targets(all=True), "on", by="op", level=100)
        wait_for(lambda: hubside.delivery_state(batch.id, dev)[0] == "failed")
        assert hubside.delivery_state(batch.id, dev) == ("failed", "driver")
        assert hubside.delivery_state(batch.id, "lamp-c1") == ("offline", "not connected")


def test_an_offline_lamp_gets_the_command_when_it_returns_before_expiry(hubside: HubSide,
                                                                        mosquitto: MosquittoServer) -> None:
    dev = "lamp-c3"
    batch, _ = hubside.service.command(Targets(devices=(dev,)), "dim", by="op", level=40)
    assert hubside.delivery_state(batch.id, dev) == ("offline", "not connected")
    with running_fleet(mosquitto.url, [DeviceSpec(dev, "light")]) as fleet:
        hubside.online(dev)
        hubside.service.sweep(time.time())
        wait_for(lambda: hubside.delivery_state(batch.id, dev)[0] == "done")
        assert fleet.run(lambda: fleet.light(dev).lamp.level) == 40


def test_a_redelivered_command_is_acked_again_and_the_delivery_stays_done(hubside: HubSide,
                                                                          mosquitto: MosquittoServer) -> None:
    dev = "lamp-c1"
    with recording(mosquitto.port) as rec, running_fleet(mosquitto.url, [DeviceSpec(dev, "light")]) as fleet:
        hubside.online(dev)
        batch, [d] = hubside.service.command(Targets(devices=(dev,)), "on", by="op")
        wait_for(lambda: hubside.delivery_state(batch.id, dev)[0] == "done")
        rec.client.publish(f"vhub/v1/dev/{dev}/cmd", d.payload, qos=1).wait_for_publish(5)
        rec.wait(lambda g: any(m.json().get("reason") == "duplicate" for m in g), device=dev, channel="ack")
        assert fleet.run(lambda: fleet.light(dev).lamp.executed) == 1
        assert hubside.delivery_state(batch.id, dev) == ("done", None)


def test_acks_of_other_commands_are_left_to_the_broadcasts(hubside: HubSide) -> None:
    svc = hubside.service
    assert svc.on_ack("spk-1", json.dumps({"id": "0123abcd", "state": "done"}).encode(), time.time()) is None
    assert svc.on_ack("spk-1", json.dumps({"id": "lt-unknown", "state": "done"}).encode(), time.time()) is None
    assert svc.on_ack("spk-1", b"not json lt-", time.time()) is None
