"""hub.mqtt.leanpub (the hand-written QoS 1 command publisher) against paho as the oracle, on a
real Mosquitto: a paho subscriber receives exactly what was published — topic, payload, QoS 1,
retain, MQTT 5 user properties —, in order per device, also across a broker restart in the
middle of a stream; the broker's Receive Maximum holds; a connection lost with messages in
flight sends them again first, in order, with DUP set (a scripted broker checks the bytes)."""

from __future__ import annotations

import socket
import threading
import time
from collections import defaultdict
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hub.ingest.mqttrx import _packet_at
from hub.mqtt.leanpub import LeanCommandPublisher
from hub.mqtt.publisher import CommandPublisher
from hub.settings import MqttUrl
from tests.servers import MosquittoServer, free_port

pytestmark = pytest.mark.component


class Oracle:
    """A paho subscriber (persistent session) of every `cmd` topic, recording each message."""

    def __init__(self, port: int, client_id: str, *, protocol: int = 311) -> None:
        self.got: dict[str, list[bytes]] = defaultdict(list)
        self.messages: list[mqtt.MQTTMessage] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        v5 = protocol == 5
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
                                  clean_session=None if v5 else False)
        self.client.max_inflight_messages_set(0)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_a: c.subscribe("vhub/v1/dev/+/cmd", 1)
        self.client.on_subscribe = lambda *_a: self.subscribed.set()
        self.client.reconnect_delay_set(0.1, 0.5)
        kwargs: dict[str, Any] = {}
        if v5:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600
            kwargs = {"clean_start": False, "properties": props}
        self.client.connect("127.0.0.1", port, **kwargs)
        self.client.loop_start()
        assert self.subscribed.wait(10)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.got[msg.topic].append(bytes(msg.payload))
            self.messages.append(msg)

    def count(self) -> int:
        with self.lock:
            return len(self.messages)

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


def first_occurrences(values: list[bytes]) -> list[bytes]:
    seen: set[bytes] = set()
    return [v for v in values if not (v in seen or seen.add(v))]  # type: ignore[func-returns-value]


@pytest.mark.parametrize("protocol", [5, 311])
def test_lean_publisher_delivers_exactly_what_was_published_in_order_per_device(
        mosquitto: MosquittoServer, protocol: int) -> None:
    oracle = Oracle(mosquitto.port, f"oracle-order-{protocol}", protocol=protocol)
    pub = CommandPublisher(MqttUrl(mosquitto.url), f"lean-order-{protocol}", size=3, protocol=protocol)
    assert isinstance(pub.impl, LeanCommandPublisher)
    pub.start()
    try:
        assert pub.wait_connected(10)
        devices = [f"spk{i:03d}" for i in range(60)]

        def producer(k: int) -> None:
            for seq in range(50):
                for d in devices[k::4]:
                    pub.publish(f"vhub/v1/dev/{d}/cmd", f'{{"id":"{d}-{seq}","pad":"{"x" * (seq * 7)}"}}'.encode())

        threads = [threading.Thread(target=producer, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert wait_for(lambda: oracle.count() >= 60 * 50), oracle.count()
        assert wait_for(lambda: pub.pending() == 0)
        time.sleep(0.2)  # nothing more may come
        assert oracle.count() == 60 * 50  # no loss, no duplicate without a reconnect
        for d in devices:
            assert oracle.got[f"vhub/v1/dev/{d}/cmd"] == [
                f'{{"id":"{d}-{s}","pad":"{"x" * (s * 7)}"}}'.encode() for s in range(50)]
        assert all(m.qos == 1 and not m.retain for m in oracle.messages)
        assert pub.published == 60 * 50
    finally:
        pub.stop()
        oracle.close()


def test_lean_publisher_qos0_retain_and_user_properties_reach_a_paho_subscriber(
        mosquitto: MosquittoServer) -> None:
    oracle = Oracle(mosquitto.port, "oracle-props", protocol=5)
    pub = LeanCommandPublisher(MqttUrl(mosquitto.url), "lean-props", size=1, protocol=5)
    pub.start()
    try:
        assert pub.wait_connected(10)
        pub.publish("vhub/v1/dev/cam1/cmd", b'{"id":"s1","action":"snapshot"}', qos=1,
                    properties={"cmd_id": "s1", "中文": "值"})
        pub.publish("vhub/v1/dev/cam2/cmd", b"zero", qos=0)
        pub.publish("vhub/v1/dev/cam3/cmd", b"kept", qos=1, retain=True)
        pub.publish("vhub/v1/dev/cam3/cmd", b"", qos=1, retain=True)  # clears the retained message
        big = bytes(range(256)) * 800  # a payload past the 2-byte remaining length
        pub.publish("vhub/v1/dev/cam4/cmd", big)
        assert wait_for(lambda: oracle.count() >= 5)
        by_topic = {m.topic: m for m in oracle.messages}
        m1 = by_topic["vhub/v1/dev/cam1/cmd"]
        assert m1.qos == 1 and m1.payload == b'{"id":"s1","action":"snapshot"}'
        assert m1.properties is not None and dict(m1.properties.UserProperty) == {"cmd_id": "s1", "中文": "值"}
        assert by_topic["vhub/v1/dev/cam2/cmd"].qos == 0 and by_topic["vhub/v1/dev/cam2/cmd"].payload == b"zero"
        assert oracle.got["vhub/v1/dev/cam3/cmd"] == [b"kept", b""]
        assert by_topic["vhub/v1/dev/cam4/cmd"].payload == big
        assert wait_for(lambda: pub.pending() == 0)
        with pytest.raises(ValueError):
            pub.publish("vhub/v1/dev/cam1/cmd", b"x", qos=2)
    finally:
        pub.stop()
        oracle.close()


def test_lean_publisher_honours_the_brokers_receive_maximum(tmp_path: Any) -> None:
    broker = MosquittoServer(tmp_path / "m", "allow_anonymous true\nmax_inflight_messages 5\n").start()
    oracle = Oracle(broker.port, "oracle-window")
    pub = LeanCommandPublisher(MqttUrl(broker.url), "lean-window", size=1, protocol=5)
    pub.start()
    try:
        assert pub.wait_connected(10)
        assert pub.conns[0].window == 5  # from the CONNACK's Receive Maximum
        most = 0
        for i in range(2000):
            pub.publish(f"vhub/v1/dev/d{i % 40}/cmd", str(i).encode())
            most = max(most, len(pub.conns[0].inflight))
        while pub.pending():
            most = max(most, len(pub.conns[0].inflight))
            time.sleep(0)
        assert most <= 5
        assert wait_for(lambda: oracle.count() == 2000), oracle.count()
        assert pub.connected()  # never disconnected for exceeding the quota
    finally:
        pub.stop()
        oracle.close()
        broker.stop()


@pytest.mark.parametrize("protocol", [5, 311])
def test_lean_publisher_loses_nothing_and_keeps_order_across_a_broker_restart_mid_stream(
        fresh_mosquitto: MosquittoServer, protocol: int) -> None:
    oracle = Oracle(fresh_mosquitto.port, f"oracle-restart-{protocol}")
    pub = LeanCommandPublisher(MqttUrl(fresh_mosquitto.url), f"lean-restart-{protocol}", size=2,
                               protocol=protocol)
    pub.start()
    devices = [f"d{i:02d}" for i in range(20)]
    sent: dict[str, list[bytes]] = defaultdict(list)
    stop = threading.Event()

    def stream() -> None:
        seq = 0
        while not stop.is_set():
            for d in devices:
                payload = f"{d}:{seq}".encode()
                pub.publish(f"vhub/v1/dev/{d}/cmd", payload)
                sent[d].append(payload)
            seq += 1
            time.sleep(0.005)

    producer = threading.Thread(target=stream)
    try:
        assert pub.wait_connected(10)
        producer.start()
        assert wait_for(lambda: oracle.count() > 500)
        fresh_mosquitto.stop()
        assert wait_for(lambda: not pub.connected(), 10)
        time.sleep(0.5)  # published while the broker is away: held
        fresh_mosquitto.start()
        assert wait_for(pub.connected, 40)
        time.sleep(0.5)
        stop.set()
        producer.join()
        total = sum(len(v) for v in sent.values())
        assert wait_for(lambda: pub.pending() == 0, 30)
        assert wait_for(lambda: sum(len(first_occurrences(v)) for v in oracle.got.values()) >= total, 40)
        for d in devices:
            got = oracle.got[f"vhub/v1/dev/{d}/cmd"]
            # at least once: every command arrives; after a resend a duplicate may too, but never
            # one command overtaking an earlier one
            assert first_occurrences(got) == sent[d]
        assert all(m.qos == 1 for m in oracle.messages)
    finally:
        stop.set()
        if producer.is_alive():
            producer.join()
        pub.stop()
        oracle.close()


class ScriptedBroker:
    """Just enough of a broker to check bytes: accepts, answers CONNECT with CONNACK, records
    each PUBLISH's first byte, packet id and payload, acknowledges only when told to."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server = socket.create_server(("127.0.0.1", self.port))
        self.server.settimeout(10)

    def accept(self) -> socket.socket:
        conn, _ = self.server.accept()
        conn.settimeout(10)
        packets = self.read(conn, 1)
        assert packets[0][0] >> 4 == 1  # CONNECT
        conn.sendall(b"\x20\x02\x00\x00")  # CONNACK, accepted
        return conn

    @staticmethod
    def read(conn: socket.socket, count: int, buf: bytearray | None = None) -> list[tuple[int, bytes]]:
        """`count` packets as (first byte, body)."""
        buf = bytearray() if buf is None else buf
        out: list[tuple[int, bytes]] = []
        while len(out) < count:
            span = _packet_at(buf, 0, len(buf))
            if span is None:
                data = conn.recv(65536)
                assert data, "the publisher closed the connection"
                buf += data
                continue
            i, end = span
            out.append((buf[0], bytes(buf[i:end])))
            del buf[:end]
        return out


def publish_fields(first: int, body: bytes) -> tuple[bool, int, bytes]:
    """(DUP, packet id, payload) of an MQTT 3.1.1 QoS 1 PUBLISH."""
    tlen = int.from_bytes(body[:2], "big")
    return bool(first & 0x08), int.from_bytes(body[2 + tlen:4 + tlen], "big"), body[4 + tlen:]


def test_messages_in_flight_on_a_lost_connection_are_sent_again_first_in_order_with_dup() -> None:
    broker = ScriptedBroker()
    pub = LeanCommandPublisher(MqttUrl(f"mqtt://127.0.0.1:{broker.port}"), "lean-dup", size=1, protocol=311)
    pub.start()
    try:
        first = broker.accept()
        for i in range(5):
            pub.publish("vhub/v1/dev/a/cmd", f"m{i}".encode())
        got = [publish_fields(f, b) for f, b in ScriptedBroker.read(first, 5)]
        assert [(dup, payload) for dup, _mid, payload in got] == [(False, f"m{i}".encode()) for i in range(5)]
        first.sendall(b"\x40\x02" + got[0][1].to_bytes(2, "big"))  # PUBACK only the first
        assert wait_for(lambda: pub.pending() == 4)
        first.close()  # lost with m1..m4 in flight
        pub.publish("vhub/v1/dev/a/cmd", b"m5")  # queued behind them
        second = broker.accept()
        again = [publish_fields(f, b) for f, b in ScriptedBroker.read(second, 5)]
        assert [p for _d, _m, p in again] == [b"m1", b"m2", b"m3", b"m4", b"m5"]
        assert [d for d, _m, _p in again] == [True, True, True, True, False]
        assert [m for _d, m, _p in again[:4]] == [m for _d, m, _p in got[1:]]  # same packet ids
        second.sendall(b"".join(b"\x40\x02" + m.to_bytes(2, "big") for _d, m, _p in again))
        assert wait_for(lambda: pub.pending() == 0)
        assert pub.published == 6  # sends again are not counted twice
        second.close()
    finally:
        pub.stop(0.1)
        broker.server.close()
