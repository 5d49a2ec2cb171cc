"""The simulated street light's firmware (device_sim/light.py), pure: commands, schedule, physics."""

from __future__ import annotations

import pytest

from device_sim.faults import DeviceRef, parse_scenario, plan
from device_sim.light import DUSK_LUX, Ack, LampFirmware, lux_at
from device_sim.township import from_counts, parse_township_csv, parse_township_yaml

pytestmark = pytest.mark.unit

T0 = 1_764_400_000.0
NIGHT, DAY = -20.0, 40.0  # sun elevations


def cmd(cid: str, action: str, **kw: object) -> dict[str, object]:
    return {"id": cid, "action": action, "ts": T0, "expires_at": T0 + 300, **kw}


def test_on_off_dim_are_acked_received_then_done_and_change_the_lamp() -> None:
    lamp = LampFirmware()
    lamp.step(T0, DAY)
    assert lamp.handle(cmd("c1", "on", level=70), T0) == [Ack("c1", "received"), Ack("c1", "done")]
    lamp.step(T0 + 1, DAY)
    assert lamp.on and lamp.level == 70 and lamp.mode == "manual" and lamp.power_w == pytest.approx(42.0)
    assert lamp.handle(cmd("c2", "dim", level=30), T0)[-1] == Ack("c2", "done")
    lamp.step(T0 + 2, DAY)
    assert lamp.heartbeat_fields(20)["level"] == 30
    assert lamp.handle(cmd("c3", "off"), T0)[-1] == Ack("c3", "done")
    lamp.step(T0 + 3, DAY)
    hb = lamp.heartbeat_fields(20)
    assert (hb["on"], hb["level"], hb["mode"]) == (False, 0, "manual")


def test_a_redelivered_command_is_acked_again_not_executed_again() -> None:
    lamp = LampFirmware()
    lamp.handle(cmd("c1", "on", level=50), T0)
    lamp.handle(cmd("c2", "off"), T0)
    assert lamp.handle(cmd("c1", "on", level=50), T0) == [Ack("c1", "done", "duplicate")]
    assert lamp.executed == 2 and not lamp.lit


def test_an_expired_command_is_acked_expired_and_ignored() -> None:
    lamp = LampFirmware()
    assert lamp.handle(cmd("c1", "on"), T0 + 301) == [Ack("c1", "expired")]
    assert not lamp.lit


@pytest.mark.parametrize("bad", [cmd("c", "dim"), cmd("c", "dim", level=101), cmd("c", "on", level=0),
                                 cmd("c", "blink"), cmd("c", "set_schedule", schedule={"mode": "moon"})])
def test_bad_commands_are_rejected(bad: dict[str, object]) -> None:
    assert LampFirmware().handle(bad, T0)[-1].state == "rejected"


def test_a_faulty_lamp_fails_on_and_reports_its_fault() -> None:
    lamp = LampFirmware(fault="led_open")
    assert lamp.handle(cmd("c1", "on"), T0) == [Ack("c1", "received"), Ack("c1", "failed", "led_open")]
    lamp.step(T0, NIGHT)
    hb = lamp.heartbeat_fields(10)
    assert hb["fault"] == "led_open" and hb["on"] is False and hb["power_w"] == 0


def test_without_a_schedule_the_photocell_lights_at_dusk_and_a_manual_off_lasts_until_dawn() -> None:
    lamp = LampFirmware()
    lamp.step(T0, DAY)
    assert not lamp.on and lamp.lux > 1000
    lamp.step(T0 + 60, NIGHT)
    assert lamp.on and lamp.lux < DUSK_LUX and lamp.mode == "auto"
    lamp.handle(cmd("c1", "off"), T0 + 61)
    lamp.step(T0 + 120, NIGHT)
    assert not lamp.on and lamp.mode == "manual"
    lamp.step(T0 + 180, DAY)
    lamp.step(T0 + 240, NIGHT)
    assert lamp.on and lamp.mode == "auto"


def test_a_schedule_lights_at_next_on_and_repeats_daily() -> None:
    lamp = LampFirmware()
    sched = {"mode": "fixed", "on": "18:00", "off": "06:00", "level": 80}
    on_t, off_t = T0 + 3600, T0 + 13 * 3600
    acks = lamp.handle(cmd("c1", "set_schedule", schedule=sched, next_on=on_t, next_off=off_t), T0)
    assert acks[-1] == Ack("c1", "done") and lamp.mode == "auto"
    lamp.step(T0 + 10, DAY)
    assert not lamp.on
    lamp.step(on_t + 1, DAY)  # the schedule, not the light sensor, decides
    assert lamp.on and lamp.level == 80
    lamp.step(off_t + 1, NIGHT)
    assert not lamp.on
    lamp.step(on_t + 86_400 + 1, DAY)
    assert lamp.on


def test_solar_battery_drains_at_night_charges_by_day_and_cuts_off_when_empty() -> None:
    lamp = LampFirmware(rated_w=30, solar=True, panel_w=120, battery_wh=720, battery_pct=50)
    lamp.step(T0, NIGHT)
    lamp.step(T0 + 3600, NIGHT)
    lamp.step(T0 + 7200, NIGHT)
    assert lamp.battery_pct == pytest.approx(50 - 2 * 30 / 720 * 100, abs=0.1)  # 2 h at 30 W
    assert lamp.solar_w == 0
    lamp.step(T0 + 8000, DAY)
    before = lamp.battery_pct
    lamp.step(T0 + 8000 + 3600, DAY)
    assert lamp.solar_w > 50 and lamp.battery_pct > before
    lamp.battery_pct = 4.0
    lamp.step(T0 + 8000 + 3601, NIGHT)
    hb = lamp.heartbeat_fields(10)
    assert hb["on"] is False and hb["fault"] == "battery"


def test_lux_follows_the_sun() -> None:
    assert lux_at(-20) == 0 and lux_at(-6) < 1 < lux_at(-2) < lux_at(0) < lux_at(30)


def test_township_lights_carry_position_and_solar_tag() -> None:
    [lamp] = parse_township_yaml("devices:\n  - {id: l1, kind: light, lat: 31.1, lon: 114.2, tags: {power: solar}}\n")
    assert (lamp.kind, lamp.lat, lamp.lon, lamp.solar) == ("light", 31.1, 114.2, True)
    [row] = parse_township_csv("kind,id,lat,lon,tags\nlight,l2,31,114,power=mains\n")
    assert (row.kind, row.lat, row.solar) == ("light", 31.0, False)
    lamps = [d for d in from_counts(0, 0, 2, lights=4) if d.kind == "light"]
    assert [d.id for d in lamps] == ["lamp-0001", "lamp-0002", "lamp-0003", "lamp-0004"]
    assert [d.solar for d in lamps] == [False, True, False, True]


def test_lamp_faults_are_scriptable_for_lights_only() -> None:
    devs = [DeviceRef("l1", "light"), DeviceRef("c1", "camera")]
    s = parse_scenario("faults:\n  - {fault: lamp_fault, share: 1.0, params: {code: driver}}\n"
                       "  - {fault: battery_dying, devices: [l1], at: 5}\n")
    switches = plan(s, devs)
    assert [(w.device_id, w.fault, w.params) for w in switches] == [
        ("l1", "lamp_fault", {"code": "driver"}), ("l1", "battery_dying", {"pct": 15.0, "drain_pct_h": 20.0})]
