"""bench.broadcast_link.BroadcastLink: status and acks reach the service (paho and lean receivers)."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bench.broadcast_link import BroadcastLink
from hub.clock import SystemClock
from tests.servers import MosquittoServer

pytestmark = pytest.mark.component


class Tap:
    """Records what reaches the service from one device (the broker may replay other tests'
    retained statuses)."""

    def __init__(self, device: str, want: int) -> None:
        self.device = device
        self.seen: list[tuple[str, str, bytes]] = []
        self.want = want
        self.done = threading.Event()

    def _add(self, item: tuple[str, str, bytes]) -> None:
        if item[0] != self.device:
            return
        self.seen.append(item)
        if len(self.seen) >= self.want:
            self.done.set()

    def on_presence(self, device_id: str, online: bool, ts: float) -> None:
        self._add((device_id, "status", b"online" if online else b"offline"))

    def on_ack(self, device_id: str, payload: bytes, received_at: float) -> bool:
        self._add((device_id, "ack", payload))
        return True


@pytest.mark.parametrize("receiver", ["paho", "lean"])
def test_status_and_acks_reach_the_service_in_order(mosquitto: MosquittoServer, receiver: str) -> None:
    n = 300
    spk = f"spk-lk-{receiver}-{time.monotonic_ns() % 10**9}"
    tap = Tap(spk, n + 1)
    link = BroadcastLink(mosquitto.url, SystemClock(), client_id=f"link-{receiver}-{time.monotonic_ns()}",
                         receiver=receiver)
    link.attach(tap)
    link.start()
    dev = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"spk-{receiver}")
    dev.connect("127.0.0.1", mosquitto.port)
    dev.loop_start()
    try:
        dev.publish(f"vhub/v1/dev/{spk}/status", b"online", qos=1)
        for i in range(n):
            dev.publish(f"vhub/v1/dev/{spk}/ack", f'{{"id": "{i}", "state": "received"}}'.encode(), qos=1)
        assert tap.done.wait(15), f"{len(tap.seen)} of {n + 1} handed to the service, first {tap.seen[:1]}"
        assert tap.seen[0] == (spk, "status", b"online") and link.is_online(spk)
        assert [p for _, _, p in tap.seen[1:]] == [f'{{"id": "{i}", "state": "received"}}'.encode() for i in range(n)]
    finally:
        dev.loop_stop()
        link.stop()
