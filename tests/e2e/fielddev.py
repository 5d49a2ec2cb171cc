"""A field device made with plain paho, as firmware would be (PROTOCOL §2, §6): persistent
session, Will `offline` on its status topic, `online` published retained after connecting, its
own `cmd` subscribed. It records every message it gets, and answers commands with the acks a
test chooses. Shares no code with the hub or the simulator, so a mistake there cannot hide."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

Acks = Callable[[dict[str, Any]], list[tuple[str, str]]]


def play_done(cmd: dict[str, Any]) -> list[tuple[str, str]]:
    """A speaker that plays each `play` to its end: received, playing, done."""
    return [("received", ""), ("playing", ""), ("done", "")] if cmd.get("action") == "play" else []


class FieldDevice:
    def __init__(self, port: int, device_id: str, *, root: str = "vhub/v1", username: str | None = None,
                 password: str | None = None, ca_file: str | None = None, acks: Acks | None = play_done,
                 watch_hub: bool = False, connect: bool = True) -> None:
        self.id = device_id
        self.root = root
        self.port = port
        self.acks = acks
        self.messages: list[paho.MQTTMessage] = []
        self.executed: dict[str, list[tuple[str, str]]] = {}  # command id → the acks sent for it
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=device_id, protocol=paho.MQTTv311,
                                  clean_session=False)
        if username is not None:
            self.client.username_pw_set(username, password)
        if ca_file is not None:
            self.client.tls_set(ca_certs=ca_file)
        self.client.will_set(self.topic("status"), b"offline", qos=1, retain=True)
        self.client.reconnect_delay_set(1, 2)
        subs = [(self.topic("cmd"), 1)] + ([(f"{root}/hub/status", 1)] if watch_hub else [])

        def on_connect(c: paho.Client, _u: Any, _f: Any, _rc: Any, _p: Any = None) -> None:
            c.subscribe(subs)
            c.publish(self.topic("status"), b"online", qos=1, retain=True)

        self.client.on_connect = on_connect
        self.client.on_subscribe = lambda *_a: self._subscribed.set()
        self.client.on_message = self._on_message
        if connect:
            self.start()

    def start(self) -> FieldDevice:
        self.client.connect("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError(f"{self.id}: no SUBACK from the broker")
        return self

    def topic(self, channel: str) -> str:
        return f"{self.root}/dev/{self.id}/{channel}"

    def _on_message(self, c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(msg)
            self._cond.notify_all()
        if msg.topic != self.topic("cmd") or self.acks is None:
            return
        cmd = json.loads(msg.payload)
        if cmd["id"] in self.executed:  # §6: acted on at most once per id, acked again
            answers = self.executed[cmd["id"]][-1:]
        else:
            answers = self.executed[cmd["id"]] = self.acks(cmd)
        for state, reason in answers:
            body: dict[str, Any] = {"id": cmd["id"], "state": state, "ts": time.time()}
            if reason:
                body["reason"] = reason
            c.publish(self.topic("ack"), json.dumps(body), qos=1)

    def publish(self, channel: str, payload: bytes | str | dict[str, Any], qos: int = 1,
                retain: bool = False) -> None:
        data = json.dumps(payload).encode() if isinstance(payload, dict) else payload
        info = self.client.publish(self.topic(channel), data, qos=qos, retain=retain)
        if qos:
            info.wait_for_publish(10)

    def wait_message(self, pred: Callable[[paho.MQTTMessage], bool], timeout: float = 15.0) -> paho.MQTTMessage:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.messages:
                    if pred(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.id}: no such message within {timeout}s; got "
                                         f"{[(m.topic, bytes(m.payload)[:80]) for m in self.messages]}")
                self._cond.wait(left)

    def commands(self, action: str | None = None) -> list[dict[str, Any]]:
        with self._cond:
            cmds = [json.loads(m.payload) for m in self.messages if m.topic == self.topic("cmd")]
        return [c for c in cmds if action is None or c.get("action") == action]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
