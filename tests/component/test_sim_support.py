"""Helpers for the simulator's component tests (no tests here).

`Recorder` is a plain paho client subscribed to `vhub/v1/#` with
retain-as-published, so it sees each message's retained flag and QoS as the
device sent it. It parses nothing with simulator or hub code.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.subscribeoptions import SubscribeOptions

from device_sim import DeviceOptions, DeviceSpec, Fleet, FleetConfig


@dataclass(frozen=True)
class Msg:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    user: dict[str, str]

    @property
    def device(self) -> str:
        return self.topic.split("/")[3]

    @property
    def channel(self) -> str:
        return self.topic.split("/")[4]

    def json(self) -> Any:
        return json.loads(self.payload)


class Recorder:
    def __init__(self, port: int, topic: str = "vhub/v1/#") -> None:
        self.msgs: list[Msg] = []
        self.cond = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"rec-{id(self)}",
                                  protocol=mqtt.MQTTv5)
        self.client.on_message = self._on
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(topic, options=SubscribeOptions(qos=2, retainAsPublished=True))
        self.client.loop_start()
        assert subscribed.wait(5)

    def _on(self, _c: Any, _u: Any, m: mqtt.MQTTMessage) -> None:
        user = dict(getattr(m.properties, "UserProperty", []) or [])
        with self.cond:
            self.msgs.append(Msg(m.topic, bytes(m.payload), m.qos, bool(m.retain), user))
            self.cond.notify_all()

    def of(self, device: str | None = None, channel: str | None = None) -> list[Msg]:
        with self.cond:
            return [m for m in self.msgs if m.topic.startswith("vhub/v1/dev/")
                    and (device is None or m.device == device) and (channel is None or m.channel == channel)]

    def wait(self, pred: Callable[[list[Msg]], bool], timeout: float = 10.0,
             device: str | None = None, channel: str | None = None) -> list[Msg]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.of(device, channel)
            if pred(got):
                return got
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting on {device}/{channel}; got {[(m.topic, m.payload[:60]) for m in got][-10:]}")
            with self.cond:
                self.cond.wait(min(left, 0.1))

    def send(self, device: str, cmd: dict[str, Any]) -> None:
        self.client.publish(f"vhub/v1/dev/{device}/cmd", json.dumps(cmd), qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def recording(port: int) -> Iterator[Recorder]:
    rec = Recorder(port)
    try:
        yield rec
    finally:
        rec.close()


@contextmanager
def running_fleet(url: str, devices: list[DeviceSpec], **opts: Any) -> Iterator[Fleet]:
    fleet_kw = {k: opts.pop(k) for k in ("scenario", "credentials", "time_scale", "scene_start")
                if k in opts}
    options = DeviceOptions(**{"heartbeat_interval_s": 0.3, "snapshot_interval_s": 0.0,
                               "width": 320, "height": 180, **opts})
    fleet = Fleet(FleetConfig(devices=devices, broker_url=url, options=options, **fleet_kw))
    fleet.start()
    try:
        assert fleet.wait_connected(timeout=10), "simulated devices did not connect"
        yield fleet
    finally:
        fleet.stop()
