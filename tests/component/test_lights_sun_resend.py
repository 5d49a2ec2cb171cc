"""The daily resend of sun-mode schedules against a real Mosquitto with a simulated lamp
(device_sim): the hub keeps the lamp's schedule in lights.db, across a restart, and sends it
again with the new day's times once the last `next_off` has passed; the lamp acks it done.
The hub's `now` is given to the sweep, a day on from the wall clock the lamp runs on."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from device_sim import DeviceSpec
from hub.clock import SystemClock
from hub.lights.schedule import FixedSchedule, SunSchedule, next_transitions
from hub.lights.service import LightConfig, LightService, Targets
from hub.lights.sunplan import RESEND_AFTER_S, SYSTEM_BY
from tests.component.test_lights_commands import HubSide, lamp_cmds, wait_for
from tests.component.test_sim_support import recording, running_fleet
from tests.servers import MosquittoServer

pytestmark = pytest.mark.component
SCHED = SunSchedule(on_offset_min=10, off_offset_min=-10, level=70)


@pytest.fixture
def hub(mosquitto: MosquittoServer, tmp_path: Path) -> Iterator[HubSide]:
    h = HubSide(mosquitto.port, tmp_path, ["lamp-s1", "lamp-s2"])
    yield h
    h.close()


def restart(h: HubSide, tmp: Path) -> None:
    """A new LightService on the same lights.db, as after a hub restart."""
    h.service.stop()
    h.service = LightService(store_path=tmp / "lights.db", clock=SystemClock(), registry=h.registry, live=h.live,
                             publish=lambda topic, payload: h.client.publish(topic, payload, qos=1),
                             emit_points=h.points.extend, alerts=h.alerts, events=h.events, config=LightConfig())
    h.service.start()


def test_the_sun_schedule_is_resent_with_the_new_days_times_and_acked_done(
        hub: HubSide, mosquitto: MosquittoServer, tmp_path: Path) -> None:
    dev = "lamp-s1"
    with recording(mosquitto.port) as rec, running_fleet(mosquitto.url, [DeviceSpec(dev, "light")]) as fleet:
        hub.online(dev)
        first, _ = hub.service.command(Targets(devices=(dev,)), "set_schedule", by="op", schedule=SCHED)
        wait_for(lambda: hub.delivery_state(first.id, dev)[0] == "done")
        [plan] = hub.service.sun_plans()
        assert plan.next_off == first.body["next_off"] and plan.state == "done"
        assert hub.service.resend_sun_schedules(plan.next_off + RESEND_AFTER_S - 1) == []  # not yet

        restart(hub, tmp_path)  # the schedule is in lights.db
        assert [(p.device, p.schedule, p.state) for p in hub.service.sun_plans()] == [(dev, SCHED, "done")]
        later = plan.next_off + RESEND_AFTER_S
        hub.service.sweep(later)  # the hub's periodic sweep sends it
        [again] = hub.service.sun_plans()
        assert again.command_id != plan.command_id
        batch_id = _batch_of(hub, again.command_id)
        wait_for(lambda: hub.delivery_state(batch_id, dev)[0] == "done")
        found = hub.service.batch(batch_id)
        assert found is not None and found[0].by == SYSTEM_BY and found[0].action == "set_schedule"
        want_on, want_off = next_transitions(SCHED, later, *hub.service.position(), hub.service.zone)
        cmds = lamp_cmds(rec, dev)
        assert [c["action"] for c in cmds] == ["set_schedule", "set_schedule"]
        assert cmds[1]["schedule"] == SCHED.wire()
        assert cmds[1]["next_on"] == pytest.approx(want_on, abs=0.01)
        assert cmds[1]["next_off"] == pytest.approx(want_off, abs=0.01)
        assert want_off - plan.next_off == pytest.approx(86400, abs=600)  # the next dawn, this day's time
        lamp = fleet.light(dev).lamp
        assert fleet.run(lambda: (lamp.next_on, lamp.next_off, lamp.mode)) == (
            pytest.approx(want_on, abs=0.01), pytest.approx(want_off, abs=0.01), "auto")
        [again] = hub.service.sun_plans()
        assert again.state == "done" and again.next_off == pytest.approx(want_off, abs=0.01)
        assert hub.service.resend_sun_schedules(later + 60) == []  # once a day


def _batch_of(h: HubSide, command_id: str) -> str:
    assert h.service.store is not None
    d = h.service.store.delivery(command_id)
    assert d is not None
    return d.batch_id


def test_a_lamp_offline_at_resend_time_gets_it_when_it_is_back(hub: HubSide, mosquitto: MosquittoServer) -> None:
    dev = "lamp-s2"
    with running_fleet(mosquitto.url, [DeviceSpec(dev, "light")]) as fleet:
        hub.online(dev)
        first, _ = hub.service.command(Targets(devices=(dev,)), "set_schedule", by="op", schedule=SCHED)
        wait_for(lambda: hub.delivery_state(first.id, dev)[0] == "done")
        [plan] = hub.service.sun_plans()
        later = plan.next_off + RESEND_AFTER_S + 3600
        hub.live.on_status(dev, "offline", time.time())
        assert hub.service.resend_sun_schedules(later) == []  # nothing for a lamp that is not there
        hub.online(dev)
        [batch] = hub.service.resend_sun_schedules(later + 60)
        wait_for(lambda: hub.delivery_state(batch.id, dev)[0] == "done")
        want_on, _ = next_transitions(SCHED, later + 60, *hub.service.position(), hub.service.zone)
        assert fleet.run(lambda: fleet.light(dev).lamp.next_on) == pytest.approx(want_on, abs=0.01)


def test_a_fixed_schedule_replaces_the_sun_schedule_and_is_not_resent(hub: HubSide) -> None:
    hub.service.command(Targets(devices=("lamp-s1", "lamp-s2")), "set_schedule", by="op", schedule=SCHED)
    assert [p.device for p in hub.service.sun_plans()] == ["lamp-s1", "lamp-s2"]
    hub.service.command(Targets(devices=("lamp-s2",)), "set_schedule", by="op",
                        schedule=FixedSchedule(dt.time(18, 30), dt.time(5, 30), 60))
    assert [p.device for p in hub.service.sun_plans()] == ["lamp-s1"]
