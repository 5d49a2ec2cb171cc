"""Mosquitto restarted mid-run: the hub reconnects within 5 s with its subscriptions restored,
no QoS 1 heartbeat is lost, and a broadcast scheduled while the broker was down is delivered
once it is back: the speaker plays it exactly once and its delivery ends `done`."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.chaos.conftest import (
    ChaosHub,
    SeqPublisher,
    assert_accounting,
    metric,
    stored_pairs,
    wait_all_stored,
    wait_until,
)
from tests.hubproc import http
from tests.servers import InfluxServer, MosquittoServer

pytestmark = [pytest.mark.e2e]

SPEAKER = "chaos-spk-001"


class MiniSpeaker:
    """Just enough PROTOCOL §6 firmware: online status with a Will; a `play` is executed at most
    once per command id (a redelivered one is acked again, not played again) and acked
    `received` then `done`. `played` is what really came out of the loudspeaker."""

    def __init__(self, port: int, device: str) -> None:
        self.device = device
        self.commands: list[dict[str, Any]] = []  # every play command delivered, redeliveries included
        self.played: list[str] = []  # broadcast ids, once per execution
        self._executed: set[str] = set()
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id=device, protocol=paho.MQTTv311,
                             clean_session=False)
        self.c.reconnect_delay_set(1, 2)
        self.c.will_set(f"vhub/v1/dev/{device}/status", b"offline", qos=1, retain=True)
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _on_connect(self, c: paho.Client, u: Any, flags: Any, rc: Any, props: Any = None) -> None:
        c.subscribe(f"vhub/v1/dev/{self.device}/cmd", qos=1)
        c.publish(f"vhub/v1/dev/{self.device}/status", b"online", qos=1, retain=True)

    def _on_message(self, c: paho.Client, u: Any, msg: paho.MQTTMessage) -> None:
        cmd = json.loads(msg.payload)
        if cmd.get("action") != "play":
            return
        self.commands.append(cmd)
        if cmd["id"] not in self._executed:
            self._executed.add(cmd["id"])
            self.played.append(cmd["broadcast_id"])
        topic = f"vhub/v1/dev/{self.device}/ack"
        for state in ("received", "done"):
            c.publish(topic, json.dumps({"id": cmd["id"], "state": state, "ts": time.time()}), qos=1)

    def stop(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


@pytest.fixture
def persistent_mosquitto(tmp_path: Path) -> Iterator[MosquittoServer]:
    """A broker whose persistence file is really written at shutdown. Run as root, Mosquitto
    drops to the `mosquitto` user and then cannot write a root-owned temp dir ("Error:
    Permission denied" in its log, every session lost on restart); `user root` keeps it root."""
    config = "allow_anonymous true\n" + ("user root\n" if os.geteuid() == 0 else "")
    server = MosquittoServer(tmp_path / "mosquitto", config=config).start()
    yield server
    server.stop()


def test_broker_restart_mid_stream_reconnects_within_5s_and_loses_nothing(
    tmp_path: Path, persistent_mosquitto: MosquittoServer, influxdb: InfluxServer, db_name: str,
    hubs: list[ChaosHub],
) -> None:
    fresh_mosquitto = persistent_mosquitto
    hub = ChaosHub(tmp_path, fresh_mosquitto.url, influxdb.url, db_name)
    hubs.append(hub)
    hub.start()
    status, body = http("PUT", f"{hub.url}/api/v1/devices/{SPEAKER}", {"kind": "speaker", "name": "喇叭 1"})
    assert status in (200, 201), body
    speaker = MiniSpeaker(fresh_mosquitto.port, SPEAKER)
    devices = [f"brk-{i:03d}" for i in range(10)]
    pub = SeqPublisher(fresh_mosquitto.port, devices, f"chaos-brk-pub-{fresh_mosquitto.port}")
    try:
        pub.start(per_device=200, rate=400.0)  # 2,000 heartbeats over ~5 s
        assert wait_until(lambda: len(stored_pairs(influxdb, db_name, "brk-")) > 200, 15), hub.log_tail()

        # the broker goes away; a broadcast is scheduled while it is down (an emergency,
        # so quiet hours cannot postpone it whatever the time of day)
        fresh_mosquitto.stop()
        assert wait_until(lambda: metric(hub.metrics(), "vh_mqtt_connected") == 0, 5)
        status, created = http("POST", f"{hub.url}/api/v1/broadcasts", {
            "title": "断线期间的广播", "media": {"type": "tts", "text": "测试", "lang": "zh"},
            "targets": {"devices": [SPEAKER]}, "priority": 8, "volume": 60, "repeat": 1})
        assert status == 201, created
        broadcast_url = f"{hub.url}/api/v1/broadcasts/{created['id']}"

        def delivery_state() -> str | None:
            st, b = http("GET", broadcast_url)
            assert st == 200, b
            states = [d["state"] for o in b["occurrences"] for d in o["deliveries"] if d["device"] == SPEAKER]
            return states[-1] if states else None

        # the scheduler has taken it up (a delivery exists) while the broker is still down
        assert wait_until(lambda: delivery_state() is not None, 10), http("GET", broadcast_url)
        state_while_down = delivery_state()
        fresh_mosquitto.restart()  # same port, persistence on: sessions survive
        assert "Permission denied" not in (tmp_path / "mosquitto" / "mosquitto.log").read_text()
        t_up = time.monotonic()
        assert wait_until(lambda: metric(hub.metrics(), "vh_mqtt_connected") == 1, 5, 0.05), \
            f"the hub did not reconnect within 5 s:\n{hub.log_tail()}"
        reconnect_s = time.monotonic() - t_up
        assert reconnect_s <= 5.0

        pub.join(30)
        expected = pub.wait_acked(30)
        assert len(expected) == len(pub.published)
        rows = wait_all_stored(influxdb, db_name, "brk-", expected, timeout=30)
        missing = expected - set(rows)
        assert not missing, f"{len(missing)} lost, e.g. {sorted(missing)[:5]}"
        assert not [k for k, n in Counter(rows).items() if n > 1]

        # the broadcast: delivered once the broker is back, and played exactly once
        assert wait_until(lambda: delivery_state() == "done", 30), \
            f"delivery ended in {delivery_state()!r}: {http('GET', broadcast_url)}\n{hub.log_tail()}"
        assert speaker.played == [created["id"]], speaker.commands
        assert {c["broadcast_id"] for c in speaker.commands} == {created["id"]}, state_while_down
        assert_accounting(hub)
    finally:
        pub.stop()
        speaker.stop()
