"""The test servers themselves start and answer (a canary for the fixtures): a message makes the
round trip through Mosquitto, a point written to InfluxDB is read back, both listen on loopback only."""

import json
import queue
import urllib.request

import paho.mqtt.client as paho
import psutil
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.servers import InfluxServer, MosquittoServer

pytestmark = pytest.mark.component


def listen_addresses(pid: int) -> set[tuple[str, int]]:
    return {(c.laddr[0], c.laddr[1]) for c in psutil.Process(pid).net_connections("inet")
            if c.status == psutil.CONN_LISTEN and c.laddr}


def test_mosquitto_routes_a_message_and_listens_on_loopback_only(mosquitto: MosquittoServer) -> None:
    got: queue.Queue[paho.MQTTMessage] = queue.Queue()
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id="canary", protocol=paho.MQTTv311)
    c.on_message = lambda _c, _u, m: got.put(m)
    c.connect("127.0.0.1", mosquitto.port)
    c.loop_start()
    try:
        # SUBSCRIBE goes out before PUBLISH on the same connection: the broker handles them in order
        c.subscribe("canary/#", qos=1)
        c.publish("canary/ping", b"hello", qos=1).wait_for_publish(5)
        m = got.get(timeout=5)
        assert (m.topic, m.payload) == ("canary/ping", b"hello")
    finally:
        c.loop_stop()
        c.disconnect()
    assert listen_addresses(mosquitto.process.pid) == {("127.0.0.1", mosquitto.port)}


def test_influxdb_stores_a_point_and_answers_influxql(influxdb: InfluxServer) -> None:
    influxdb.query("CREATE DATABASE canary", db="")
    assert ["canary"] in influxdb.query("SHOW DATABASES", db="")[0]["values"]
    req = urllib.request.Request(f"{influxdb.url}/write?db=canary&precision=s",
                                 data=b"probe,device=d1 value=42i 1700000000", method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 204
    rows = influxdb.rows("SELECT value FROM probe GROUP BY device", db="canary")
    assert rows == [{"time": 1700000000, "value": 42, "device": "d1"}], json.dumps(rows)
    assert {addr for addr, _port in listen_addresses(influxdb.process.pid)} == {"127.0.0.1"}
