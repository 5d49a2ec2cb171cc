"""hub.ingest.mqttrx, the ingest workers' receive-only MQTT client, against real Mosquitto."""

from __future__ import annotations

import queue
import socket
import struct
import time

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hub.ingest.mqttrx import MqttReceiver, RxOptions, pubacks
from hub.messages import InboundMessage
from hub.topics import Topics
from tests.servers import MosquittoServer

pytestmark = pytest.mark.component
FILTER = "vhub/v1/dev/+/heartbeat"


def receiver(port: int, client_id: str, protocol: int, inbox: queue.Queue[list[InboundMessage]]) -> MqttReceiver:
    return MqttReceiver(RxOptions("127.0.0.1", port, client_id, protocol), Topics("vhub/v1"), [(FILTER, 1)], inbox.put)


def publisher(port: int) -> paho.Client:
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{time.monotonic_ns()}")
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def take(inbox: queue.Queue[list[InboundMessage]], n: int, timeout: float = 10.0,
         ack: MqttReceiver | None = None) -> list[InboundMessage]:
    """`n` messages; with `ack`, each read is acknowledged as it comes (a 3.1.1 broker sends
    only a window of unacknowledged messages: 20 by Mosquitto's default)."""
    got: list[InboundMessage] = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        try:
            chunk = inbox.get(timeout=0.2)
        except queue.Empty:
            continue
        got.extend(chunk)
        if ack is not None:
            assert ack.ack_messages(chunk) == len(chunk)
    return got


@pytest.mark.parametrize("protocol", [5, 311])
def test_messages_arrive_in_order_with_device_and_payload(mosquitto: MosquittoServer, protocol: int) -> None:
    inbox: queue.Queue[list[InboundMessage]] = queue.Queue()
    rx = receiver(mosquitto.port, f"rx-order-{protocol}", protocol, inbox)
    rx.start()
    pub = publisher(mosquitto.port)
    try:
        assert rx.subscribed.wait(10)
        for i in range(500):
            pub.publish(f"vhub/v1/dev/cam-{i % 3}/heartbeat", f'{{"seq": {i}}}'.encode() + b"x" * (i % 300), qos=1)
        got = take(inbox, 500, ack=rx)
        assert [m.payload.split(b"}")[0] for m in got] == [f'{{"seq": {i}'.encode() for i in range(500)]
        assert [m.device_id for m in got[:4]] == ["cam-0", "cam-1", "cam-2", "cam-0"]
        assert all(m.channel == "heartbeat" and m.qos == 1 and m.session == rx.session for m in got)
    finally:
        pub.loop_stop()
        rx.stop()


def test_unacknowledged_messages_are_redelivered_to_the_next_session_and_acked_ones_are_not(
    mosquitto: MosquittoServer,
) -> None:
    inbox: queue.Queue[list[InboundMessage]] = queue.Queue()
    rx = receiver(mosquitto.port, "rx-session", 5, inbox)
    rx.start()
    pub = publisher(mosquitto.port)
    try:
        assert rx.subscribed.wait(10)
        for i in range(100):
            pub.publish("vhub/v1/dev/cam-1/heartbeat", str(i).encode(), qos=1)
        got = take(inbox, 100)
        assert len(got) == 100
        assert rx.ack_messages(got[:60]) == 60
    finally:
        rx.stop()  # queued acks are sent before DISCONNECT
    inbox2: queue.Queue[list[InboundMessage]] = queue.Queue()
    rx2 = receiver(mosquitto.port, "rx-session", 5, inbox2)
    rx2.start()
    try:
        again = take(inbox2, 40)
        assert sorted(int(m.payload) for m in again) == list(range(60, 100))
        assert rx2.ack_messages(again) == 40
        # messages of the old connection are never acknowledged on a new one
        assert rx2.ack_messages(got[60:]) == 0
    finally:
        pub.loop_stop()
        rx2.stop()


class _TimingOut:
    """A connection whose writes time out (a broker that stopped reading); the rest is real."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def sendall(self, data: bytes) -> None:
        raise TimeoutError("timed out")

    def shutdown(self, how: int) -> None:
        self.sock.shutdown(how)


def test_acks_are_written_by_the_acking_thread_and_a_failed_write_drops_the_connection(
    mosquitto: MosquittoServer,
) -> None:
    inbox: queue.Queue[list[InboundMessage]] = queue.Queue()
    rx = receiver(mosquitto.port, "rx-direct", 5, inbox)
    rx.start()
    pub = publisher(mosquitto.port)
    try:
        assert rx.subscribed.wait(10)
        for i in range(10):
            pub.publish("vhub/v1/dev/cam-1/heartbeat", str(i).encode(), qos=1)
        got = take(inbox, 10)
        first_session = rx.session
        real = rx._direct
        assert real is not None  # plain TCP: acks go straight to the socket
        rx._direct = _TimingOut(real)  # type: ignore[assignment]
        assert rx.ack_messages(got[:5]) == 0  # not written: nothing may count as acknowledged
        # the connection is dropped (half a packet may have gone out) and the broker hands all
        # ten to the next connection of the same session
        again = take(inbox, 10)
        assert rx.session != first_session
        assert sorted(int(m.payload) for m in again) == list(range(10))
        assert rx.ack_messages(again) == 10
    finally:
        pub.loop_stop()
        rx.stop()


def test_pubacks_are_packet_type_4_with_the_packet_id() -> None:
    assert pubacks([1, 258]) == bytes([0x40, 2, 0, 1, 0x40, 2, 1, 2])


def test_packets_split_across_reads_are_parsed_once_complete() -> None:
    got: list[InboundMessage] = []
    rx = MqttReceiver(RxOptions("127.0.0.1", 1, "x", 5), Topics("vhub/v1"), [], got.extend)
    topic = b"vhub/v1/dev/cam-9/heartbeat"
    payload = b'{"kind":"camera"}' * 20
    body = struct.pack(">H", len(topic)) + topic + struct.pack(">H", 77) + b"\x00" + payload
    packet = bytes([0x32, (len(body) & 0x7F) | 0x80, len(body) >> 7]) + body
    buf = bytearray()
    for cut in (1, 2, 40, len(packet)):  # header byte, half the length, part of the body, all
        buf += packet[len(buf):cut]
        rx._parse(buf, rx.session)
    assert [(m.device_id, m.mid, m.qos, m.payload) for m in got] == [("cam-9", 77, 1, payload)]
    assert buf == bytearray()
    rx.stop()


def publish(topic: bytes, payload: bytes, mid: int) -> bytes:
    """One MQTT 5 QoS 1 PUBLISH packet (remaining length < 128 bytes)."""
    body = struct.pack(">H", len(topic)) + topic + struct.pack(">H", mid) + b"\x00" + payload
    assert len(body) < 128
    return bytes([0x32, len(body)]) + body


def test_messages_never_share_a_receive_time_even_in_one_read_or_on_a_still_clock() -> None:
    """A heartbeat without `ts` is stored at its receive time; two of one device at the same
    time would be one point in InfluxDB. So every message gets its own time, µs apart, in order."""
    got: list[InboundMessage] = []
    clock = [1_796_000_000.25]
    rx = MqttReceiver(RxOptions("127.0.0.1", 1, "x", 5), Topics("vhub/v1"), [], got.extend, now=lambda: clock[0])
    topic = b"vhub/v1/dev/cam-9/heartbeat"
    rx._parse(bytearray(b"".join(publish(topic, b'{"kind":"camera"}', m) for m in (1, 2, 3))), rx.session)
    rx._parse(bytearray(publish(topic, b'{"kind":"camera"}', 4)), rx.session)  # the clock has not moved
    stored_us = [round(m.received_at * 1_000_000) for m in got]  # the precision points are stored at
    assert stored_us == sorted(set(stored_us)) and len(stored_us) == 4
    assert got[0].received_at == clock[0] and got[-1].received_at - clock[0] < 1e-5
    clock[0] += 5.0  # once the clock is ahead again, it is used as it is
    rx._parse(bytearray(publish(topic, b'{"kind":"camera"}', 5)), rx.session)
    assert got[-1].received_at == clock[0]
    clock[0] -= 3600.0  # a clock stepped back an hour is followed, not outrun
    rx._parse(bytearray(publish(topic, b'{"kind":"camera"}', 6)), rx.session)
    assert got[-1].received_at == clock[0]
    rx.stop()
