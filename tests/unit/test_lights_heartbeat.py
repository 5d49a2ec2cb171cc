"""Street-light heartbeats (docs/devices.md): the `light` fields, each rejected alone when wrong."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hub.devices.heartbeat import Heartbeat, heartbeat_point_fields, parse_heartbeat

NOW = 1_764_400_000.0
GOOD: dict[str, Any] = {
    "kind": "light", "ts": NOW, "seq": 3, "interval_s": 30, "on": True, "level": 80, "power_w": 24.5,
    "energy_wh": 1234.5, "mains": False, "solar": True, "battery_pct": 76.5, "solar_w": 0,
    "lux": 2.5, "temp_c": 21.5, "fault": None, "mode": "auto",
}


def parse(doc: dict[str, Any]) -> Heartbeat:
    hb = parse_heartbeat("lamp-1", json.dumps(doc).encode(), NOW)
    assert isinstance(hb, Heartbeat)
    return hb


def test_light_heartbeat_keeps_every_contract_field() -> None:
    hb = parse(GOOD)
    assert hb.kind == "light"
    assert hb.rejected == ()
    for name, value in GOOD.items():
        if name not in ("kind", "ts"):
            assert hb.fields[name] == value, name


def test_light_fault_string_is_kept_and_null_is_stored_as_empty() -> None:
    assert parse({**GOOD, "fault": "led_open"}).fields["fault"] == "led_open"
    assert heartbeat_point_fields(parse(GOOD))["fault"] == ""


@pytest.mark.parametrize(("name", "bad", "reason"), [
    ("on", "yes", "wrong_type"),
    ("on", 1, "wrong_type"),
    ("level", 101, "out_of_range"),
    ("level", -1, "out_of_range"),
    ("level", 50.5, "wrong_type"),
    ("level", True, "wrong_type"),
    ("power_w", -0.1, "out_of_range"),
    ("power_w", "24", "wrong_type"),
    ("energy_wh", -5, "out_of_range"),
    ("mains", "true", "wrong_type"),
    ("solar", 0, "wrong_type"),
    ("battery_pct", 100.5, "out_of_range"),
    ("battery_pct", "full", "wrong_type"),
    ("solar_w", -1, "out_of_range"),
    ("lux", -0.5, "out_of_range"),
    ("temp_c", "warm", "wrong_type"),
    ("fault", "x" * 33, "too_long"),
    ("fault", 7, "wrong_type"),
    ("mode", "schedule", "bad_value"),
    ("mode", None, "bad_value"),
])
def test_light_field_of_wrong_type_is_rejected_alone(name: str, bad: Any, reason: str) -> None:
    hb = parse({**GOOD, name: bad})
    assert [(r.field, r.reason) for r in hb.rejected] == [(name, reason)]
    assert name not in hb.fields
    assert hb.fields["seq"] == 3  # the rest of the heartbeat is kept
    assert len(hb.fields) == len(GOOD) - 3  # all but kind, ts and the bad field


def test_speaker_fields_do_not_leak_into_light_heartbeats() -> None:
    hb = parse({**GOOD, "volume": 50, "fps": 25})
    assert "volume" not in hb.fields and "fps" not in hb.fields
