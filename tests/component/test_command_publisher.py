"""hub.mqtt.publisher.CommandPublisher against a real Mosquitto: order per device, QoS 1
across a broker restart, flush on stop."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from hub.mqtt.publisher import CommandPublisher
from hub.settings import MqttUrl
from tests.servers import MosquittoServer


class Subscriber:
    """A persistent-session subscriber of every `cmd` topic, recording payloads per topic."""

    def __init__(self, port: int, client_id: str) -> None:
        self.got: dict[str, list[bytes]] = defaultdict(list)
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv311, clean_session=False)
        self.client.max_inflight_messages_set(0)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_a: c.subscribe("vhub/v1/dev/+/cmd", 1)
        self.client.on_subscribe = lambda *_a: self.subscribed.set()
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(10)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.got[msg.topic].append(bytes(msg.payload))

    def count(self) -> int:
        with self.lock:
            return sum(len(v) for v in self.got.values())

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_for(cond: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_commands_from_several_threads_arrive_complete_and_in_order_per_device(
        mosquitto: MosquittoServer) -> None:
    sub = Subscriber(mosquitto.port, "test-cmdpub-order")
    pub = CommandPublisher(MqttUrl(mosquitto.url), "test-hub", size=3)
    pub.start()
    try:
        assert pub.wait_connected(10)
        devices = [f"spk{i:03d}" for i in range(50)]

        def producer(k: int) -> None:
            for seq in range(40):
                for d in devices[k::4]:
                    pub.publish(f"vhub/v1/dev/{d}/cmd", f"{d}:{seq}".encode())

        threads = [threading.Thread(target=producer, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert wait_for(lambda: sub.count() >= 50 * 40), sub.count()
        assert wait_for(lambda: pub.pending() == 0)
        for d in devices:
            assert sub.got[f"vhub/v1/dev/{d}/cmd"] == [f"{d}:{s}".encode() for s in range(40)]
        assert pub.published == 50 * 40
    finally:
        pub.stop()
        sub.close()


def test_commands_published_while_the_broker_is_down_are_sent_after_it_returns(
        fresh_mosquitto: MosquittoServer) -> None:
    sub = Subscriber(fresh_mosquitto.port, "test-cmdpub-restart")
    pub = CommandPublisher(MqttUrl(fresh_mosquitto.url), "test-hub", size=2)
    pub.start()
    try:
        assert pub.wait_connected(10)
        pub.publish("vhub/v1/dev/a/cmd", b"before")
        assert wait_for(lambda: sub.count() == 1)
        fresh_mosquitto.stop()
        assert wait_for(lambda: not pub.connected(), 10)
        for i in range(20):
            pub.publish(f"vhub/v1/dev/d{i}/cmd", b"while-down")
        assert pub.pending() == 20  # held: nothing is acknowledged while the broker is away
        fresh_mosquitto.start()
        assert wait_for(lambda: sub.count() >= 21, 40), sub.count()
        assert wait_for(lambda: pub.pending() == 0)
        assert all(sub.got[f"vhub/v1/dev/d{i}/cmd"] == [b"while-down"] for i in range(20))
    finally:
        pub.stop()
        sub.close()


def test_stop_sends_what_was_queued(mosquitto: MosquittoServer) -> None:
    sub = Subscriber(mosquitto.port, "test-cmdpub-stop")
    pub = CommandPublisher(MqttUrl(mosquitto.url), "test-hub-stop", size=1)
    pub.start()
    assert pub.wait_connected(10)
    for i in range(500):
        pub.publish(f"vhub/v1/dev/s{i}/cmd", b"x")
    pub.stop()
    assert pub.pending() == 0
    assert wait_for(lambda: sub.count() == 500), sub.count()
    sub.close()
