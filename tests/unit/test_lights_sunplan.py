"""Which lamps on a sun-mode schedule are due a resend at `now` (hub.lights.sunplan): pure,
with the clock given as a value."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from hub.lights.schedule import SunSchedule, next_transitions
from hub.lights.sunplan import (
    RESEND_AFTER_S,
    RETRY_S,
    SunPlan,
    due_for_resend,
    resend_due,
    schedule_from_wire,
)

pytestmark = pytest.mark.unit

SH = ZoneInfo("Asia/Shanghai")
TOWNSHIP = (31.02, 114.40)
SCHED = SunSchedule(on_offset_min=10, off_offset_min=-10, level=80)
EVENING = datetime(2026, 3, 1, 20, 0, tzinfo=SH).timestamp()


def plan(state: str = "done", *, device: str = "lamp-1", schedule: SunSchedule = SCHED,
         sent_at: float = EVENING) -> SunPlan:
    _, next_off = next_transitions(schedule, sent_at, *TOWNSHIP, SH)
    return SunPlan(device, schedule, "lt-" + device, next_off, sent_at, state)


def test_a_delivered_schedule_is_due_once_its_next_off_has_passed() -> None:
    p = plan()
    assert datetime.fromtimestamp(p.next_off, SH).date() == datetime(2026, 3, 2).date()  # the next dawn
    for now, due in ((EVENING + 3600, False), (p.next_off, False), (p.next_off + RESEND_AFTER_S - 1, False),
                     (p.next_off + RESEND_AFTER_S, True), (p.next_off + 5 * 3600, True)):
        assert resend_due(p, now, online=True, in_flight=False) is due, now


def test_an_offline_lamp_or_one_with_a_command_in_flight_is_not_due() -> None:
    later = plan().next_off + RESEND_AFTER_S + 60
    assert not resend_due(plan(), later, online=False, in_flight=False)
    assert not resend_due(plan("sent"), later, online=True, in_flight=True)
    assert resend_due(plan(), later, online=True, in_flight=False)  # back online: due at once


@pytest.mark.parametrize("state", ["failed", "expired", "offline", "pending", "unsent"])
def test_a_send_that_did_not_end_done_is_retried_after_retry_s(state: str) -> None:
    p = plan(state)
    assert not resend_due(p, EVENING + RETRY_S - 1, online=True, in_flight=False)
    assert resend_due(p, EVENING + RETRY_S, online=True, in_flight=False)


def test_a_schedule_the_lamp_rejected_is_not_resent() -> None:
    assert not resend_due(plan("rejected"), EVENING + 3 * 86400, online=True, in_flight=False)


def test_due_lamps_are_grouped_by_schedule_in_device_order() -> None:
    other = SunSchedule(0, 0, 100)
    plans = [plan(device="lamp-3"), plan(device="lamp-1"), plan(device="lamp-2", schedule=other),
             plan(device="lamp-4"), plan("sent", device="lamp-5")]
    now = max(p.next_off for p in plans) + RESEND_AFTER_S
    due = due_for_resend(plans, now, online=lambda d: d != "lamp-4", in_flight=lambda c: c == "lt-lamp-5")
    assert due == {SCHED: ["lamp-1", "lamp-3"], other: ["lamp-2"]}


def test_the_resent_times_follow_the_days_where_a_daily_repeat_drifts() -> None:
    """Why the resend exists: in March dusk comes about a minute later each day, so a lamp
    repeating last week's times switches on ~5 minutes early; the resend's times are the day's."""
    p = plan()
    week_later = p.next_off + 7 * 86400 + RESEND_AFTER_S
    first_on, _ = next_transitions(SCHED, EVENING - 6 * 3600, *TOWNSHIP, SH)
    new_on, new_off = next_transitions(SCHED, week_later, *TOWNSHIP, SH)
    repeated_on = first_on + 7 * 86400
    assert new_on - repeated_on > 4 * 60  # minutes of drift a resend removes
    assert timedelta(seconds=new_off - week_later) > timedelta(hours=12)  # the next dawn, not today's


def test_the_stored_wire_form_reads_back() -> None:
    assert schedule_from_wire(SCHED.wire()) == SCHED
    assert schedule_from_wire({"mode": "sun"}) == SunSchedule()
