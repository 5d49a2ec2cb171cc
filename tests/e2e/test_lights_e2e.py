"""Street lights end to end: the hub (real Mosquitto, real InfluxDB, HTTP API) with simulated lamps.

POST /api/v1/lights/commands → the lamp acks → GET shows `done`; a faulty lamp raises its alarm;
a lamp left dark at night (the service's clock injected to be at night) raises `out_at_night`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from device_sim import DeviceSpec
from hub.lights.sun import sun_times
from hub.registry.model import Device, Group, Township, Village
from tests.component.test_sim_support import running_fleet
from tests.hubproc import InProcessHub
from tests.servers import MosquittoServer

pytestmark = pytest.mark.e2e

SH = ZoneInfo("Asia/Shanghai")
LAT, LON = 31.02, 114.40


def wait_for(cond: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def register(hub: InProcessHub, *lamps: str) -> None:
    hub.services.registry.import_township(Township(None, [Village("lijia", "李家村", LAT, LON)],
                                                   [Group("lijia-g1", "lijia", "第一村民组")], [
        Device(d, "light", f"主干道路灯{i}", "lijia", "lijia-g1", LAT, LON + i * 0.001, {"power": "mains"})
        for i, d in enumerate(lamps)]))


def noon_today() -> float:
    return datetime.now(SH).replace(hour=12, minute=0, second=0, microsecond=0).timestamp()


class ShiftedClock:
    """The hub's light service sees `start`, moving on in real time."""

    def __init__(self, start: float) -> None:
        self.t0 = time.time()
        self.start = start

    def now(self) -> float:
        return self.start + (time.time() - self.t0)

    def monotonic(self) -> float:
        return time.monotonic()


def tonight_at_23() -> float:
    """Five hours after sunset (about 23:00 in the township), and still ahead of the real time:
    the hub stamps its commands' `expires_at` on this shifted clock, and a lamp whose clock runs
    on real time would refuse them as expired if it were already past (this test failed every
    evening from that hour until midnight, Shanghai time)."""
    today = datetime.now(SH).date()
    for day in (today, today + timedelta(days=1)):
        t = sun_times(LAT, LON, day, SH).sunset + 5 * 3600
        if t > time.time() + 60:
            return t
    raise AssertionError("no night ahead")  # unreachable: tomorrow's is always ahead


def test_a_command_through_the_api_ends_done_and_the_list_shows_the_lamp_lit(
        hub: InProcessHub, mosquitto: MosquittoServer) -> None:
    register(hub, "lamp-e1", "lamp-e2")
    specs = [DeviceSpec("lamp-e1", "light", "lijia", "lijia-g1"), DeviceSpec("lamp-e2", "light", "lijia", "lijia-g1")]
    with running_fleet(mosquitto.url, specs, scene_start=noon_today()) as fleet:
        wait_for(lambda: hub.api("GET", "/api/v1/lights?status=online")[1]["total"] == 2)
        status, created = hub.api("POST", "/api/v1/lights/commands", {
            "targets": {"all": False, "villages": [], "groups": ["lijia-g1"], "devices": []},
            "action": "on", "level": 70})
        assert status == 202, created
        assert {c["device"] for c in created["commands"]} == {"lamp-e1", "lamp-e2"}

        def done() -> dict[str, Any] | None:
            body = hub.api("GET", f"/api/v1/lights/commands/{created['id']}")[1]
            return body if all(d["state"] == "done" for d in body["deliveries"]) else None

        batch = wait_for(done)
        assert batch["action"] == "on" and batch["by"] and batch["level"] == 70
        assert {d["command_id"] for d in batch["deliveries"]} == {c["command_id"] for c in created["commands"]}
        assert fleet.run(lambda: fleet.light("lamp-e1").lamp.on) is True

        def lit() -> dict[str, Any] | None:
            items = hub.api("GET", "/api/v1/lights?village=lijia")[1]["items"]
            lamp = next(i for i in items if i["id"] == "lamp-e1")
            return lamp if lamp["on"] and lamp["level"] == 70 else None

        lamp = wait_for(lit)
        assert lamp["status"] == "online" and lamp["solar"] is False and lamp["power_w"] > 0
        assert lamp["lat"] == LAT and lamp["group"] == "lijia-g1" and lamp["fault"] is None


def test_roles_and_validation_of_light_commands(hub: InProcessHub) -> None:
    register(hub, "lamp-r1")
    viewer = hub.services.tokens.create("v", "viewer")
    body = {"targets": {"devices": ["lamp-r1"]}, "action": "dim", "level": 20}
    assert hub.api("POST", "/api/v1/lights/commands", body, token=viewer)[0] == 403
    assert hub.api("GET", "/api/v1/lights", token=viewer)[0] == 200
    status, err = hub.api("POST", "/api/v1/lights/commands", {**body, "targets": {"devices": ["cam-nope"]}})
    assert status == 422 and "targets" in err["detail"]
    status, err = hub.api("POST", "/api/v1/lights/commands", {"targets": {"all": True}, "action": "dim"})
    assert status == 422 and "level" in err["detail"]
    status, err = hub.api("POST", "/api/v1/lights/commands", {
        "targets": {"all": True}, "action": "set_schedule", "schedule": {"mode": "fixed", "on": "25:00", "off": "06:00"}})
    assert status == 422 and "schedule" in err["detail"]
    assert hub.api("GET", "/api/v1/lights/commands/lb-nope")[0] == 404
    status, sun = hub.api("GET", "/api/v1/lights/sun?date=2026-12-21")
    assert status == 200 and sun["sunrise"].startswith("2026-12-21T07:") and sun["sunset"].startswith("2026-12-21T17:")
    assert (sun["lat"], sun["lon"]) == pytest.approx((LAT, LON + 0.0), abs=0.01)
    assert hub.api("GET", "/api/v1/lights/sun?date=21-12-2026")[0] == 422


def test_a_sun_schedule_is_sent_with_absolute_times_and_the_lamp_follows_it(
        hub: InProcessHub, mosquitto: MosquittoServer) -> None:
    register(hub, "lamp-s1")
    with running_fleet(mosquitto.url, [DeviceSpec("lamp-s1", "light", "lijia")], scene_start=noon_today()) as fleet:
        wait_for(lambda: hub.api("GET", "/api/v1/lights?status=online")[1]["total"] == 1)
        status, created = hub.api("POST", "/api/v1/lights/commands", {
            "targets": {"devices": ["lamp-s1"]}, "action": "set_schedule",
            "schedule": {"mode": "sun", "on_offset_min": 10, "off_offset_min": -10, "level": 80}})
        assert status == 202, created
        wait_for(lambda: hub.api("GET", f"/api/v1/lights/commands/{created['id']}")[1]["deliveries"][0]["state"] == "done")
        lamp = fleet.light("lamp-s1").lamp
        sched, next_on, next_off = fleet.run(lambda: (lamp.schedule, lamp.next_on, lamp.next_off))
        assert sched == {"mode": "sun", "on_offset_min": 10, "off_offset_min": -10, "level": 80}
        now = time.time()
        assert now < next_on < now + 86_400 and now < next_off < now + 86_400
        day = datetime.fromtimestamp(next_on, SH).date()
        assert hub.services.lights is not None
        lat, lon = hub.services.lights.position()
        assert next_on == pytest.approx(sun_times(lat, lon, day, SH).sunset + 600, abs=1)
        assert next_off - next_on < timedelta(hours=24).total_seconds()


def test_a_faulty_lamp_raises_the_fault_alarm_and_it_clears_when_repaired(
        hub: InProcessHub, mosquitto: MosquittoServer) -> None:
    register(hub, "lamp-f1")
    with running_fleet(mosquitto.url, [DeviceSpec("lamp-f1", "light", "lijia")], scene_start=noon_today()) as fleet:
        wait_for(lambda: hub.api("GET", "/api/v1/lights?status=online")[1]["total"] == 1)
        fleet.fault("lamp-f1", "lamp_fault", code="led_open")

        def alarm(key: str) -> dict[str, Any] | None:
            items = hub.api("GET", "/api/v1/alerts?state=open")[1]["items"]
            return next((a for a in items if a["key"] == key), None)

        a = wait_for(lambda: alarm("light:lamp-f1:fault"))
        assert a["severity"] == "critical" and a["device_id"] == "lamp-f1" and "灯珠开路" in a["message"]
        assert a["village"] == "lijia"
        faulty = hub.api("GET", "/api/v1/lights?fault=true")[1]
        assert [i["id"] for i in faulty["items"]] == ["lamp-f1"] and faulty["items"][0]["fault"] == "led_open"
        fleet.fault("lamp-f1", "lamp_fault", on=False)
        wait_for(lambda: alarm("light:lamp-f1:fault") is None)


def test_a_lamp_dark_at_night_raises_out_at_night(hub: InProcessHub, mosquitto: MosquittoServer) -> None:
    register(hub, "lamp-n1")
    svc = hub.services.lights
    assert svc is not None
    # The lamp's own sky says noon (its photocell keeps it off, mode auto); the hub's says night.
    with running_fleet(mosquitto.url, [DeviceSpec("lamp-n1", "light", "lijia")], scene_start=noon_today()) as fleet:
        key = "light:lamp-n1:out_at_night"

        def open_keys() -> set[str]:
            return {a["key"] for a in hub.api("GET", "/api/v1/alerts?state=open")[1]["items"]}

        wait_for(lambda: hub.api("GET", "/api/v1/lights?status=online")[1]["total"] == 1)
        svc.clock = ShiftedClock(noon_today())  # by day a dark lamp is fine …
        seen = svc._watch.get
        wait_for(lambda: (w := seen("lamp-n1")) is not None and w.heartbeats_seen >= 6 and w.dark_streak == 0)
        assert key not in open_keys()
        svc.clock = ShiftedClock(tonight_at_23())  # … at night it is out
        assert wait_for(lambda: key in open_keys())
        assert fleet.run(lambda: fleet.light("lamp-n1").lamp.mode) == "auto"
        # the operator lights it: the alarm clears
        status, _ = hub.api("POST", "/api/v1/lights/commands", {"targets": {"devices": ["lamp-n1"]}, "action": "on"})
        assert status == 202
        wait_for(lambda: key not in open_keys())
