"""Street-light alarm rules (hub.lights.alarms): fault, out at night, battery low with hysteresis."""

from __future__ import annotations

import pytest

from hub.lights.alarms import AlarmChange, LampReading, LampWatch, evaluate

pytestmark = pytest.mark.unit


def reading(hb: int, **kw: object) -> LampReading:
    base: dict[str, object] = {"on": True, "level": 100, "mode": "auto", "fault": None, "battery_pct": None}
    return LampReading("lamp-1", "主干道路灯", hb, **{**base, **kw})  # type: ignore[arg-type]


def run(r: LampReading, watch: LampWatch, open_keys: set[str], night: bool = True) -> list[AlarmChange]:
    changes = evaluate(r, watch, night=night, open_keys=open_keys)
    for c in changes:
        (open_keys.add if c.action == "raise" else open_keys.discard)(c.key)
    return changes


def test_a_fault_raises_a_critical_alarm_once_and_clears_when_healthy() -> None:
    keys: set[str] = set()
    w = LampWatch()
    [c] = run(reading(1, fault="led_open"), w, keys, night=False)
    assert (c.key, c.action, c.severity, c.type) == ("light:lamp-1:fault", "raise", "critical", "light_fault")
    assert "灯珠开路" in c.message
    assert run(reading(2, fault="led_open"), w, keys, night=False) == []
    assert run(reading(3), w, keys, night=False) == [AlarmChange("light:lamp-1:fault", "clear")]


def test_out_at_night_needs_two_dark_heartbeats_in_auto_mode() -> None:
    keys: set[str] = set()
    w = LampWatch()
    assert run(reading(1, on=False), w, keys) == []
    assert run(reading(1, on=False), w, keys) == []  # the same heartbeat seen again does not count
    [c] = run(reading(2, on=False), w, keys)
    assert (c.key, c.action, c.severity) == ("light:lamp-1:out_at_night", "raise", "warning")
    assert run(reading(3, on=True), w, keys) == [AlarmChange("light:lamp-1:out_at_night", "clear")]


def test_level_zero_counts_as_out_and_a_lit_heartbeat_resets_the_count() -> None:
    keys: set[str] = set()
    w = LampWatch()
    run(reading(1, level=0), w, keys)
    run(reading(2, on=True), w, keys)
    assert run(reading(3, level=0), w, keys) == []
    assert run(reading(4, level=0), w, keys)[0].action == "raise"


def test_no_out_at_night_alarm_by_day_or_for_a_lamp_an_operator_switched_off() -> None:
    keys: set[str] = set()
    w = LampWatch()
    for hb in range(1, 5):
        assert run(reading(hb, on=False), w, keys, night=False) == []
    for hb in range(5, 9):
        assert run(reading(hb, on=False, mode="manual"), w, keys) == []


def test_battery_low_below_20_clears_only_at_30() -> None:
    keys: set[str] = set()
    w = LampWatch()
    assert run(reading(1, battery_pct=21.0), w, keys, night=False) == []
    [c] = run(reading(2, battery_pct=19.5), w, keys, night=False)
    assert (c.key, c.type) == ("light:lamp-1:battery_low", "light_battery_low") and "20%" in c.message
    for hb, pct in ((3, 22.0), (4, 29.9), (5, 18.0)):
        assert run(reading(hb, battery_pct=pct), w, keys, night=False) == []  # hysteresis: no flapping
    assert run(reading(6, battery_pct=30.0), w, keys, night=False) == [
        AlarmChange("light:lamp-1:battery_low", "clear")]
