"""hub.mqtt.leanpub's packet encoders and MQTT 5 property reader (pure)."""

from __future__ import annotations

import pytest

from hub.ingest.mqttrx import _utf8, _varint
from hub.mqtt.leanpub import connect_packet, parse_properties, publish_packet, user_properties

pytestmark = pytest.mark.unit


def test_publish_packet_sets_qos_retain_and_dup_bits_and_carries_the_packet_id() -> None:
    topic = _utf8("vhub/v1/dev/a/cmd")
    p = publish_packet(topic, b"hi", 1, False, 0x1234, v5=False)
    assert p == b"\x32" + bytes([len(topic) + 2 + 2]) + topic + b"\x12\x34hi"
    assert publish_packet(topic, b"hi", 1, True, 7, v5=False, dup=True)[0] == 0x3B
    assert publish_packet(topic, b"hi", 0, False, 7, v5=False, dup=True) == b"\x30" + bytes([len(topic) + 2]) + topic + b"hi"
    assert publish_packet(topic, b"hi", 1, False, 1, v5=True)[-3:] == b"\x00hi"  # empty property length


def test_publish_packet_remaining_length_past_127_and_16383_bytes() -> None:
    topic = _utf8("t")
    for size in (200, 20_000):
        p = publish_packet(topic, b"x" * size, 1, False, 1, v5=False)
        n = len(topic) + 2 + size
        assert p[1:1 + len(_varint(n))] == _varint(n) and len(p) == 1 + len(_varint(n)) + n


def test_user_properties_read_back_and_connack_integers_are_found() -> None:
    blob = user_properties({"cmd_id": "s1"})
    assert blob[0] == len(blob) - 1 and blob[1] == 0x26
    ints, end = parse_properties(blob, 0, len(blob))
    assert ints == {} and end == len(blob)
    # CONNACK properties: Receive Maximum 100, Server Keep Alive 20, Assigned Client Identifier,
    # Maximum Packet Size, Topic Alias Maximum, a user property
    body = (b"\x21\x00\x64" + b"\x13\x00\x14" + b"\x12" + _utf8("abc") + b"\x27\x00\x01\x00\x00"
            + b"\x22\x00\x0a" + b"\x26" + _utf8("k") + _utf8("v"))
    ints, end = parse_properties(_varint(len(body)) + body, 0, len(body) + 1)
    assert ints == {0x21: 100, 0x13: 20, 0x27: 65536, 0x22: 10} and end == len(body) + 1
    with pytest.raises(ValueError):
        parse_properties(b"\x02\x7f\x00", 0, 3)


def test_connect_packet_asks_for_a_clean_session_with_credentials() -> None:
    p = connect_packet("hub-cmd0", v5=False, keepalive_s=30, username="hub", password="pw")
    assert p[0] == 0x10 and p[2:8] == _utf8("MQTT") and p[8] == 4 and p[9] == 0x02 | 0x80 | 0x40
    assert p.endswith(_utf8("hub-cmd0") + _utf8("hub") + _utf8("pw"))
    v5 = connect_packet("c", v5=True, keepalive_s=30, username=None, password=None)
    assert v5[8] == 5 and v5[9] == 0x02 and v5[12] == 0  # no properties: session expiry 0
