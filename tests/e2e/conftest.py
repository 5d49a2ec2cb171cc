"""End-to-end fixtures: the hub (in-process) against real Mosquitto and InfluxDB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.hubproc import InProcessHub, hub_settings
from tests.servers import InfluxServer, MosquittoServer


@pytest.fixture
def hub(tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxServer) -> Iterator[InProcessHub]:
    """A hub with a database of its own (named after the test) on the shared servers."""
    db = "vh_" + tmp_path.name.replace("-", "_")[:40]
    h = InProcessHub(hub_settings(tmp_path, mosquitto.url, influxdb.url, influx_db=db)).start()
    h.db = db  # type: ignore[attr-defined]
    yield h
    h.stop()


def raw_client(port: int, client_id: str, *, will_offline: bool = False, v5: bool = False) -> paho.Client:
    """A plain MQTT client: contract tests publish raw bytes with it, so a mistake shared by
    the hub and the simulator cannot hide."""
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                    protocol=paho.MQTTv5 if v5 else paho.MQTTv311)
    if will_offline:
        c.will_set(f"vhub/v1/dev/{client_id}/status", b"offline", qos=1, retain=True)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c
