"""Fast checks of the benchmark tooling's pure parts: the raw MQTT encoding of the load
generator, its heartbeats valid per PROTOCOL §3, and the runner's parsing of results."""

from __future__ import annotations

import json

import pytest

from bench.__main__ import last_json_object
from bench.mqtt_load import (
    connect_packet,
    device_kind,
    heartbeat_payload,
    publish_packet,
    remaining_length,
)
from bench.report import normalize, summary_rows
from hub.devices.heartbeat import Heartbeat, parse_heartbeat

pytestmark = [pytest.mark.unit]


@pytest.mark.parametrize(("n", "encoded"), [
    (0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"), (16_383, b"\xff\x7f"), (16_384, b"\x80\x80\x01"),
    (2_097_151, b"\xff\xff\x7f"), (268_435_455, b"\xff\xff\xff\x7f"),
])
def test_remaining_length_matches_mqtt_311_examples(n: int, encoded: bytes) -> None:
    assert remaining_length(n) == encoded


def test_publish_packet_is_qos1_with_topic_packet_id_and_payload() -> None:
    pkt = publish_packet("vhub/v1/dev/a/heartbeat", b"{}", 258)
    assert pkt[0] == 0x32
    body = pkt[2:]
    assert pkt[1] == len(body)
    assert body[:2] == b"\x00\x17" and body[2:25] == b"vhub/v1/dev/a/heartbeat"
    assert body[25:27] == b"\x01\x02" and body[27:] == b"{}"


def test_connect_packet_is_mqtt_311_clean_session() -> None:
    pkt = connect_packet("c1")
    assert pkt[0] == 0x10 and pkt[2:10] == b"\x00\x04MQTT\x04\x02"[:8]


@pytest.mark.parametrize("i", [0, 1, 2, 3, 4])
def test_load_heartbeats_are_valid_per_protocol_with_no_field_rejected(i: int) -> None:
    kind = device_kind(i, "synthetic")
    hb = parse_heartbeat(f"d{i:06d}", heartbeat_payload(kind, 7, 1_764_400_000.25), 1_764_400_000.0)
    assert isinstance(hb, Heartbeat)
    assert hb.kind == kind and hb.seq == 7 and not hb.rejected and hb.time == 1_764_400_000.25


def test_runner_takes_the_last_json_object_after_log_lines() -> None:
    text = 'starting\n{"a": 1}\nlog {not json\n{\n "b": {"c": 2}\n}\n'
    assert last_json_object(text) == {"b": {"c": 2}}
    assert last_json_object("no json here") is None


def test_colleague_output_is_normalised_to_figures_with_baselines() -> None:
    raw = {"bench": "lineprotocol", "hub_encode_point_per_s": 500_000, "influxdb_client_point_per_s": 50_000,
           "hub_encode_points_batch_per_s": 600_000, "fstring_no_escaping_per_s": 700_000}
    res = normalize("lineprotocol", raw)
    assert res["figures"][0]["ratio"] == 10.0
    rows = summary_rows([res])
    assert rows[0][0] == "lineprotocol" and "500,000" in rows[0][2]
    unknown = normalize("somebench", {"x_per_s": 3.5, "label": "n/a"})
    assert [f["name"] for f in unknown["figures"]] == ["x_per_s"]
    assert json.loads(json.dumps(unknown))["details"] == {"x_per_s": 3.5, "label": "n/a"}
