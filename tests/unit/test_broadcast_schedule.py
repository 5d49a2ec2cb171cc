"""Recurrence (python-dateutil rrule) in the start's zone, quiet hours, and the scheduler's due()."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest

from hub.broadcasts.schedule import (
    ScheduleError,
    apply_quiet_hours,
    due,
    parse_recurrence,
    quiet_hours_end,
)
from hub.quiethours import QuietHours

pytestmark = pytest.mark.unit

SH = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=SH).timestamp()


def local(ts: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(ts, zone).strftime("%Y-%m-%d %H:%M")


def test_daily_rule_in_shanghai_expands_lazily_at_the_same_local_time() -> None:
    rec = parse_recurrence("2026-12-01T07:30:00+08:00", "FREQ=DAILY;COUNT=7", None,
                           "Asia/Shanghai", NOW)
    times = rec.between(NOW, NOW + 30 * 86400)
    assert [local(t, SH) for t in times] == [f"2026-12-0{d} 07:30" for d in range(1, 8)]
    assert rec.next_after(times[-1]) is None


def test_daily_rule_in_berlin_keeps_local_time_across_the_dst_change() -> None:
    rec = parse_recurrence("2026-03-27T07:30:00", "FREQ=DAILY;COUNT=4", "Europe/Berlin",
                           "Asia/Shanghai", NOW)
    times = rec.between(0, 2e9)
    assert [local(t, BERLIN) for t in times] == [
        "2026-03-27 07:30", "2026-03-28 07:30", "2026-03-29 07:30", "2026-03-30 07:30"]
    # 07:30 CET is 06:30 UTC; after the change 07:30 CEST is 05:30 UTC: 23 h apart.
    assert times[2] - times[1] == 23 * 3600


def test_start_offset_matching_the_hub_zone_is_evaluated_in_the_hub_zone() -> None:
    rec = parse_recurrence("2026-03-27T07:30:00+01:00", "FREQ=DAILY", None, "Europe/Berlin", NOW)
    assert rec.dtstart.tzinfo == BERLIN


def test_start_with_a_foreign_offset_keeps_that_fixed_offset() -> None:
    rec = parse_recurrence("2026-03-27T07:30:00-05:00", "FREQ=DAILY", None, "Asia/Shanghai", NOW)
    assert rec.dtstart.utcoffset() is not None
    assert rec.dtstart.utcoffset().total_seconds() == -5 * 3600  # type: ignore[union-attr]


def test_weekly_rule_on_weekdays_yields_only_those_days() -> None:
    rec = parse_recurrence("2026-11-30T08:00:00+08:00", "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=4", None,
                           "Asia/Shanghai", NOW)
    days = [datetime.fromtimestamp(t, SH).strftime("%a") for t in rec.between(0, 2e9)]
    assert days == ["Mon", "Wed", "Mon", "Wed"]


def test_no_start_means_now_and_no_rule_means_once() -> None:
    rec = parse_recurrence(None, None, None, "Asia/Shanghai", NOW + 0.25)
    assert rec.first == NOW
    assert rec.next_after(NOW) is None


def test_no_start_with_a_rule_fires_now_first_not_a_period_later() -> None:
    rec = parse_recurrence(None, "FREQ=HOURLY;COUNT=3", None, "Asia/Shanghai", NOW + 0.25)
    assert rec.first_at_or_after(rec.dtstart.timestamp()) == NOW
    assert rec.between(NOW, NOW + 86400) == [NOW, NOW + 3600, NOW + 7200]


@pytest.mark.parametrize(
    ("start", "rule", "words"),
    [
        ("yesterday", None, "ISO 8601"),
        ("2026-12-01T07:30:00+08:00", "FREQ=SOMETIMES", "RFC 5545"),
        ("2026-12-01T07:30:00+08:00", "DTSTART:20261201T000000\nRRULE:FREQ=DAILY", "DTSTART"),
        ("2026-12-01T07:30:00+08:00", "FREQ=MINUTELY;INTERVAL=5", "HOURLY"),
        ("2026-12-01T07:30:00+08:00", "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=31", "no occurrence"),
    ],
)
def test_bad_schedules_are_refused_with_a_readable_message(start: str, rule: str | None,
                                                            words: str) -> None:
    with pytest.raises(ScheduleError, match=words):
        parse_recurrence(start, rule, None, "Asia/Shanghai", NOW)


def test_unknown_zone_is_refused() -> None:
    with pytest.raises(ScheduleError, match="IANA"):
        parse_recurrence("2026-12-01T07:30:00", None, "Mars/Olympus", "Asia/Shanghai", NOW)


@pytest.mark.parametrize(
    ("clock", "inside"),
    [(time(21, 59), False), (time(22, 0), True), (time(23, 30), True), (time(0, 0), True),
     (time(5, 59), True), (time(6, 0), False), (time(12, 0), False)],
)
def test_default_quiet_hours_span_midnight(clock: time, inside: bool) -> None:
    assert QuietHours().contains(clock) is inside


def test_quiet_hours_with_equal_start_and_end_are_disabled() -> None:
    assert not QuietHours.parse("00:00", "00:00").contains(time(3, 0))


def test_routine_broadcast_at_night_is_postponed_to_six_local() -> None:
    at = datetime(2026, 12, 1, 23, 15, tzinfo=SH).timestamp()
    when, why = apply_quiet_hours(at, priority=3, policy="postpone", qh=QuietHours(), zone=SH)
    assert when is not None and local(when, SH) == "2026-12-02 06:00"
    assert why == "postponed_quiet_hours"


def test_routine_broadcast_after_midnight_is_postponed_to_six_the_same_day() -> None:
    at = datetime(2026, 12, 2, 1, 0, tzinfo=SH).timestamp()
    assert local(quiet_hours_end(at, QuietHours(), SH) or 0, SH) == "2026-12-02 06:00"


def test_routine_broadcast_at_night_with_skip_policy_is_dropped() -> None:
    at = datetime(2026, 12, 1, 23, 15, tzinfo=SH).timestamp()
    assert apply_quiet_hours(at, priority=3, policy="skip", qh=QuietHours(), zone=SH) == (
        None, "quiet_hours")


def test_emergency_ignores_quiet_hours() -> None:
    at = datetime(2026, 12, 1, 23, 15, tzinfo=SH).timestamp()
    assert apply_quiet_hours(at, priority=8, policy="skip", qh=QuietHours(), zone=SH) == (at, "")


def test_daytime_broadcast_is_not_touched_by_quiet_hours() -> None:
    at = datetime(2026, 12, 1, 9, 0, tzinfo=SH).timestamp()
    assert apply_quiet_hours(at, priority=1, policy="postpone", qh=QuietHours(), zone=SH) == (at, "")


def test_per_village_quiet_hours_can_be_daytime_only() -> None:
    qh = QuietHours.parse("12:00", "14:00")
    at = datetime(2026, 12, 1, 13, 0, tzinfo=SH).timestamp()
    when, _ = apply_quiet_hours(at, priority=1, policy="postpone", qh=qh, zone=SH)
    assert when is not None and local(when, SH) == "2026-12-01 14:00"


def test_due_fires_within_grace_and_misses_beyond_it() -> None:
    got = due({"a": 100.0, "b": 1000.0, "c": 5000.0}, now=1500.0, grace_s=600.0)
    assert [(d.broadcast_id, d.fate) for d in got] == [("a", "missed"), ("b", "fire")]
