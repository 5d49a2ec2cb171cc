"""PROTOCOL §3: heartbeat validation, field by field."""

import json

import pytest

from hub.devices.heartbeat import Heartbeat, HeartbeatRejected, lost_between, parse_heartbeat

pytestmark = pytest.mark.unit
NOW = 1_764_400_000.0


def hb(doc: object) -> Heartbeat | HeartbeatRejected:
    return parse_heartbeat("cam-001", json.dumps(doc).encode(), NOW)


def test_camera_heartbeat_keeps_every_valid_field() -> None:
    r = hb({"kind": "camera", "ts": NOW - 1, "seq": 7, "interval_s": 30, "uptime_s": 100, "rssi_dbm": -61,
            "fw": "2.1.0", "fps": 25, "bitrate_kbps": 2048.5, "temp_c": 41.2, "storage_free_pct": 63,
            "recording": True, "stream_url": "rtsp://10.0.0.5/main"})
    assert isinstance(r, Heartbeat)
    assert r.kind == "camera" and r.time == NOW - 1 and r.seq == 7 and r.interval_s == 30
    assert r.fields["recording"] is True and r.fields["fps"] == 25.0 and r.fields["fw"] == "2.1.0"
    assert "ts" not in r.fields and not r.rejected


def test_speaker_heartbeat_keeps_every_valid_field() -> None:
    r = hb({"kind": "speaker", "volume": 70, "state": "playing", "playing": "cmd-1", "amp_temp_c": 45.0,
            "power_w": 12.5, "mains": True, "battery_pct": 98})
    assert isinstance(r, Heartbeat)
    assert r.fields == {"volume": 70, "state": "playing", "playing": "cmd-1", "amp_temp_c": 45.0,
                        "power_w": 12.5, "mains": True, "battery_pct": 98}


def test_heartbeat_with_wrong_type_field_keeps_other_fields() -> None:
    r = hb({"kind": "camera", "fps": "25", "temp_c": 40, "recording": 1})
    assert isinstance(r, Heartbeat)
    assert r.fields == {"temp_c": 40.0}
    assert {(x.field, x.reason) for x in r.rejected} == {("fps", "wrong_type"), ("recording", "wrong_type")}


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("storage_free_pct", 101, "out_of_range"),
        ("fps", -1, "out_of_range"),
        ("seq", -1, "out_of_range"),
        ("seq", 1.5, "wrong_type"),
        ("uptime_s", True, "wrong_type"),
        ("interval_s", 0, "out_of_range"),
        ("fw", "x" * 33, "too_long"),
        ("stream_url", "ftp://x", "bad_value"),
        ("stream_url", "rtsp://" + "a" * 600, "too_long"),
    ],
)
def test_out_of_range_or_wrong_typed_camera_field_is_rejected_alone(field: str, value: object, reason: str) -> None:
    r = hb({"kind": "camera", "temp_c": 30, field: value})
    assert isinstance(r, Heartbeat)
    assert r.fields.get("temp_c") == 30.0
    assert [(x.field, x.reason) for x in r.rejected] == [(field, reason)]


@pytest.mark.parametrize(
    ("field", "value"),
    [("volume", 101), ("volume", 50.5), ("state", "sleeping"), ("battery_pct", -1), ("mains", "yes"),
     ("power_w", -3), ("playing", 5)],
)
def test_bad_speaker_field_is_rejected_alone(field: str, value: object) -> None:
    r = hb({"kind": "speaker", "volume": 10, field: value} if field != "volume" else {"kind": "speaker", field: value})
    assert isinstance(r, Heartbeat)
    assert [x.field for x in r.rejected] == [field]


def test_speaker_playing_null_is_valid() -> None:
    r = hb({"kind": "speaker", "playing": None, "state": "idle"})
    assert isinstance(r, Heartbeat) and r.fields["playing"] is None and not r.rejected


def test_unknown_fields_are_ignored() -> None:
    r = hb({"kind": "camera", "fps": 10, "future_field": {"a": 1}, "fps_v2": "x"})
    assert isinstance(r, Heartbeat) and r.fields == {"fps": 10.0} and not r.rejected


def test_fields_of_the_other_kind_are_ignored() -> None:
    r = hb({"kind": "camera", "volume": 50})
    assert isinstance(r, Heartbeat) and r.fields == {}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "not_json"),
        (b"\xff\xfe", "not_json"),
        (b"[1,2]", "not_object"),
        (b'"camera"', "not_object"),
        (b"{}", "missing_kind"),
        (b'{"kind": "toaster"}', "bad_kind"),
        (b'{"kind": 1}', "bad_kind"),
        (b'{"kind": "camera", "fps": NaN}', "not_json"),
        (b'{"kind": "camera", "fps": Infinity}', "not_json"),
        (b"[" * 5000 + b"]" * 5000, "not_json"),
        (b'{"kind": "camera", "fw": "' + b"x" * (1 << 20) + b'"}', "too_large"),
    ],
)
def test_malformed_heartbeat_is_rejected_whole(payload: bytes, reason: str) -> None:
    r = parse_heartbeat("cam-001", payload, NOW)
    assert isinstance(r, HeartbeatRejected) and r.reason == reason


def test_nested_unknown_field_is_ignored_and_known_fields_kept() -> None:
    payload = b'{"kind": "camera", "fps": 3, "x": ' + b"[" * 100 + b"]" * 100 + b"}"
    r = parse_heartbeat("cam-001", payload, NOW)
    assert isinstance(r, Heartbeat)
    assert r.fields == {"fps": 3.0} and not r.rejected


def test_nesting_too_deep_to_parse_within_16_kib_is_rejected_whole_as_not_json() -> None:
    payload = b'{"kind": "camera", "fps": 3, "x": ' + b"[" * 8000 + b"]" * 8000 + b"}"
    assert len(payload) <= 16 * 1024  # under the size limit: the parser itself must refuse it
    r = parse_heartbeat("cam-001", payload, NOW)
    assert isinstance(r, HeartbeatRejected) and r.reason == "not_json"


def test_heartbeat_of_exactly_16_kib_is_accepted_and_one_byte_more_is_too_large() -> None:
    head = b'{"kind": "camera", "fps": 3, "pad": "'
    fits = head + b"x" * (16 * 1024 - len(head) - 2) + b'"}'
    assert len(fits) == 16 * 1024
    r = parse_heartbeat("cam-001", fits, NOW)
    assert isinstance(r, Heartbeat) and r.fields == {"fps": 3.0}
    over = head + b"x" * (16 * 1024 - len(head) - 1) + b'"}'
    r = parse_heartbeat("cam-001", over, NOW)
    assert isinstance(r, HeartbeatRejected) and r.reason == "too_large"


def test_missing_ts_uses_receive_time() -> None:
    r = hb({"kind": "camera"})
    assert isinstance(r, Heartbeat) and r.time == NOW and r.clock_skew_s is None


def test_clock_skew_over_300s_is_flagged_and_receive_time_used() -> None:
    r = hb({"kind": "camera", "ts": NOW - 301})
    assert isinstance(r, Heartbeat)
    assert r.clock_skew_s == pytest.approx(-301) and r.time == NOW


def test_small_clock_difference_keeps_device_time() -> None:
    r = hb({"kind": "camera", "ts": NOW + 299})
    assert isinstance(r, Heartbeat) and r.clock_skew_s is None and r.time == NOW + 299


@pytest.mark.parametrize(("prev", "seq", "lost"), [(None, 5, 0), (5, 6, 0), (5, 9, 3), (9, 0, 0), (5, 5, 0)])
def test_seq_gaps_count_lost_heartbeats(prev: int | None, seq: int, lost: int) -> None:
    assert lost_between(prev, seq) == lost
