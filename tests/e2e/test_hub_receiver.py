"""The hub process's lean receiver (hub.ingest.hubrx): heartbeat and ack off paho with 0 workers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hub import metrics
from hub.ingest.hubrx import LEAN_CHANNELS, lean_channels
from tests.e2e.conftest import raw_client
from tests.hubproc import InProcessHub, hub_settings
from tests.servers import InfluxServer, MosquittoServer

pytestmark = pytest.mark.e2e


def counter(c: Any, **labels: str) -> float:
    return float(c.labels(**labels)._value.get())


def wait_for(predicate: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout}s")


def test_lean_channels_only_with_zero_workers_on_plain_mqtt(tmp_path: Path) -> None:
    assert lean_channels(hub_settings(tmp_path, "mqtt://127.0.0.1:1883", None)) == LEAN_CHANNELS
    assert lean_channels(hub_settings(tmp_path, "mqtts://127.0.0.1:8883", None)) == ()
    assert lean_channels(hub_settings(tmp_path, "mqtt://127.0.0.1:1883", None, ingest_workers=2)) == ()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoServer]:
    """A broker of its own: retained heartbeats other tests leave would change the counts."""
    server = MosquittoServer(tmp_path / "mosquitto").start()
    yield server
    server.stop()


def test_heartbeats_come_through_the_lean_receiver_once(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxServer
) -> None:
    db = "vh_hubrx"
    settings = hub_settings(tmp_path, mosquitto.url, influxdb.url, influx_db=db)
    # A retained heartbeat: replayed on subscription, rejected (`retained`), never stored.
    dev = raw_client(mosquitto.port, "cam-rx")
    dev.publish("vhub/v1/dev/cam-rx-ret/heartbeat", b'{"kind": "camera", "seq": 1}', qos=1,
                retain=True).wait_for_publish(5)
    # The hub's paho session as an older hub left it: subscribed to heartbeats. Unless the hub
    # drops that subscription, every heartbeat would arrive twice (paho and the lean receiver).
    old = paho.Client(CallbackAPIVersion.VERSION2, client_id=settings.mqtt.client_id, protocol=paho.MQTTv5)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    granted, replayed = threading.Event(), threading.Event()
    old.on_subscribe = lambda *_a: granted.set()
    old.on_message = lambda *_a: replayed.set()  # the retained one, acknowledged: not left queued
    old.connect("127.0.0.1", mosquitto.port, clean_start=False, properties=props)
    old.loop_start()
    old.subscribe("vhub/v1/dev/+/heartbeat", 1)
    assert granted.wait(10) and replayed.wait(10)
    old.disconnect()
    old.loop_stop()
    # Published while the hub is away: queued in the old session, so delivered (once) through
    # paho when the hub comes back, before the subscription is dropped: nothing lost on upgrade.
    dev.publish("vhub/v1/dev/cam-rx-queued/heartbeat", b'{"kind": "camera", "seq": 7}', qos=1).wait_for_publish(5)
    received0 = counter(metrics.messages_received, kind="heartbeat")
    accepted0 = counter(metrics.messages_accepted, kind="heartbeat")
    retained0 = counter(metrics.messages_rejected, kind="heartbeat", reason="retained")
    hub = InProcessHub(settings)
    hub.start()
    try:
        assert hub.hub is not None and hub.hub.receiver is not None
        assert hub.hub.receiver.receiver.subscribed.wait(10)
        assert hub.services.mqtt is not None and hub.services.mqtt.unsubscribed.wait(10)
        for seq in range(30):
            dev.publish("vhub/v1/dev/cam-rx/heartbeat",
                        json.dumps({"kind": "camera", "seq": seq, "ts": time.time()}), qos=1)
        rows = wait_for(lambda: (r := influxdb.rows("SELECT count(seq) FROM heartbeat", db)) and
                        r[0]["count"] == 31 and r)
        assert rows[0]["count"] == 31
        wait_for(lambda: counter(metrics.messages_rejected, kind="heartbeat", reason="retained") - retained0 == 1)
        wait_for(lambda: counter(metrics.messages_accepted, kind="heartbeat") - accepted0 == 31)
        # received = accepted + rejected (30 + queued + retained), nothing came a second time
        assert counter(metrics.messages_received, kind="heartbeat") - received0 == 32
        assert wait_for(lambda: hub.services.live.status("cam-rx") == "online")
    finally:
        dev.publish("vhub/v1/dev/cam-rx-ret/heartbeat", b"", qos=1, retain=True).wait_for_publish(5)
        dev.loop_stop()
        hub.stop()
