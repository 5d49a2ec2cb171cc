"""A minimal MQTT edge for running the broadcast service on its own (benchmarks and tests).

In the hub the hub's MQTT client, ingest pipeline and presence service do this job; here
one paho client publishes commands, follows `…/status` (presence) and `…/ack`, and hands
them to the service from a worker thread. The paho network thread only appends to a list
(a wake-up only when the worker sleeps); the worker takes everything received so far in one
go. MQTT 3.1.1 by default (no `Properties` object per received message; `protocol=5` for
commands with user properties).

`receiver="lean"` receives `status` and `ack` as the hub now does with 0 ingest workers
(`hub.ingest.hubrx`): `hub.ingest.mqttrx.MqttReceiver` on its own connection
(`<client id>-rx`), one hand-off and one write of PUBACKs per network read; paho then only
publishes.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hub.clock import Clock
from hub.ingest.mqttrx import MqttReceiver, RxOptions
from hub.messages import InboundMessage
from hub.topics import Topics

log = logging.getLogger(__name__)


class BroadcastLink:
    def __init__(self, url: str, clock: Clock, *, root: str = "vhub/v1",
                 client_id: str = "villagehub-broadcasts", max_inflight: int = 1000,
                 protocol: int = 311, receiver: str = "paho") -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 1883
        self.topics = Topics(root)
        self.clock = clock
        self.online: dict[str, bool] = {}
        self.service: Any = None  # a BroadcastService, set by attach()
        # appended by the network thread, taken whole by the worker (deque: thread-safe ends)
        self._inbox: deque[tuple[str, str, bytes, float] | threading.Event | None] = deque()
        self._wake = threading.Event()
        self._connected = threading.Event()
        self._subscribed = threading.Event()  # paho: the SUBACK of status and ack
        self._worker: threading.Thread | None = None
        self.v5 = protocol == 5
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5 if self.v5 else mqtt.MQTTv311)
        self.client.max_inflight_messages_set(max_inflight)
        self.client.max_queued_messages_set(0)
        if parts.username:
            self.client.username_pw_set(parts.username, parts.password)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_a: self._subscribed.set()
        self.rx: MqttReceiver | None = None
        if receiver == "lean":
            self.rx = MqttReceiver(
                RxOptions(self.host, self.port, f"{client_id}-rx", 5 if self.v5 else 311,
                          parts.username, parts.password),
                self.topics, [(self.topics.inbound_filter("status"), 1), (self.topics.inbound_filter("ack"), 1)],
                self._on_messages, now=clock.now)
        elif receiver != "paho":
            raise ValueError(f"receiver: paho or lean, not {receiver!r}")

    def attach(self, service: Any) -> None:
        self.service = service

    def is_online(self, device_id: str) -> bool:
        return self.online.get(device_id, False)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False,
                properties: dict[str, str] | None = None) -> None:
        props = None
        if properties:
            if not self.v5:
                raise ValueError("user properties need protocol=5")
            props = Properties(PacketTypes.PUBLISH)
            props.UserProperty = list(properties.items())
        self.client.publish(topic, payload, qos=qos, retain=retain, properties=props)

    def start(self, timeout: float = 10.0) -> None:
        self._worker = threading.Thread(target=self._work, name="broadcast-link", daemon=True)
        self._worker.start()
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()
        if not self._connected.wait(timeout):
            raise TimeoutError(f"no MQTT connection to {self.host}:{self.port}")
        # A status or ack published before the broker has the subscription is not delivered.
        if self.rx is None and not self._subscribed.wait(timeout):
            raise TimeoutError(f"no SUBACK from {self.host}:{self.port}")
        if self.rx is not None:
            self.rx.start()
            if not self.rx.subscribed.wait(timeout):
                raise TimeoutError(f"the lean receiver got no SUBACK from {self.host}:{self.port}")

    def stop(self) -> None:
        if self.rx is not None:
            self.rx.stop(2.0)
        self.client.disconnect()
        self.client.loop_stop()
        self._put(None)
        if self._worker is not None:
            self._worker.join(5)

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until everything received so far has been handed to the service."""
        done = threading.Event()
        self._put(done)
        done.wait(timeout)

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        if rc.is_failure:
            log.warning("broadcast link refused by the broker: %s", rc)
            return
        if self.rx is None:
            client.subscribe([(self.topics.inbound_filter("status"), 1),
                              (self.topics.inbound_filter("ack"), 1)])
        self._connected.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        t = self.topics.parse(msg.topic)
        if t is not None:
            self._put((t.device_id, t.channel, bytes(msg.payload), self.clock.now()))

    def _on_messages(self, messages: list[InboundMessage]) -> None:
        """The lean receiver's thread: one network read's messages, then their PUBACKs."""
        for m in messages:
            self._inbox.append((m.device_id, m.channel, m.payload, m.received_at))
        if not self._wake.is_set():
            self._wake.set()
        assert self.rx is not None
        self.rx.ack_messages(messages)

    def _put(self, item: tuple[str, str, bytes, float] | threading.Event | None) -> None:
        self._inbox.append(item)
        if not self._wake.is_set():  # the worker clears it before taking: nothing is missed
            self._wake.set()

    def _work(self) -> None:
        inbox = self._inbox
        while True:
            self._wake.wait()
            self._wake.clear()
            while inbox:
                item = inbox.popleft()
                if item is None:
                    return
                if isinstance(item, threading.Event):
                    item.set()
                    continue
                self._handle(*item)

    def _handle(self, device_id: str, channel: str, payload: bytes, at: float) -> None:
        try:
            if channel == "status":
                online = payload == b"online"
                was = self.online.get(device_id)
                self.online[device_id] = online
                if self.service is not None and was is not online:
                    self.service.on_presence(device_id, online, at)
            elif channel == "ack" and self.service is not None:
                self.service.on_ack(device_id, payload, at)
        except Exception:
            log.exception("broadcast link: %s from %s failed", channel, device_id)
