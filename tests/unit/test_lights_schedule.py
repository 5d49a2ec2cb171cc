"""Sun times for the township and lamp schedules (hub.lights.sun, hub.lights.schedule): pure."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from hub.lights.schedule import FixedSchedule, SunSchedule, lit_now, next_transitions, parse_hhmm
from hub.lights.sun import is_night, sun_times

pytestmark = pytest.mark.unit

SH = ZoneInfo("Asia/Shanghai")
BEIJING = (39.9042, 116.4074)
TOWNSHIP = (31.02, 114.40)


def almanac_utc_hours(lat: float, lon: float, day: date, rising: bool) -> float:
    """The US Naval Observatory's 'Almanac for Computers' (1990) sunrise/sunset algorithm:
    an independent reference for astral's NOAA formulas (agree within ~2 min)."""
    n = day.timetuple().tm_yday
    lng_hour = lon / 15
    t = n + ((6 if rising else 18) - lng_hour) / 24
    m = 0.9856 * t - 3.289
    ll = (m + 1.916 * math.sin(math.radians(m)) + 0.020 * math.sin(math.radians(2 * m)) + 282.634) % 360
    ra = math.degrees(math.atan(0.91764 * math.tan(math.radians(ll)))) % 360
    ra = (ra + (math.floor(ll / 90) * 90 - math.floor(ra / 90) * 90)) / 15
    sin_dec = 0.39782 * math.sin(math.radians(ll))
    cos_dec = math.cos(math.asin(sin_dec))
    cos_h = (math.cos(math.radians(90.833)) - sin_dec * math.sin(math.radians(lat))) / (
        cos_dec * math.cos(math.radians(lat)))
    h = (360 - math.degrees(math.acos(cos_h)) if rising else math.degrees(math.acos(cos_h))) / 15
    return (h + ra - 0.06571 * t - 6.622 - lng_hour) % 24


def local_hhmm(ts: float) -> str:
    return datetime.fromtimestamp(ts, SH).strftime("%H:%M")


@pytest.mark.parametrize(("place", "day"), [(BEIJING, date(2026, 12, 21)), (BEIJING, date(2026, 6, 21)),
                                            (TOWNSHIP, date(2026, 3, 20)), (TOWNSHIP, date(2026, 11, 30))])
def test_sun_times_agree_with_the_almanac_reference(place: tuple[float, float], day: date) -> None:
    st = sun_times(*place, day, SH)
    for got, rising in ((st.sunrise, True), (st.sunset, False)):
        ref = almanac_utc_hours(*place, day, rising)
        got_h = datetime.fromtimestamp(got, UTC)
        got_hours = got_h.hour + got_h.minute / 60 + got_h.second / 3600
        diff_min = abs((got_hours - ref + 12) % 24 - 12) * 60
        assert diff_min < 3, (day, rising, got_hours, ref)


def test_beijing_winter_solstice_matches_the_published_almanac() -> None:
    st = sun_times(*BEIJING, date(2026, 12, 21), SH)
    assert local_hhmm(st.sunrise) in ("07:32", "07:33", "07:34")
    assert local_hhmm(st.sunset) in ("16:52", "16:53", "16:54")


def test_night_starts_thirty_minutes_after_sunset_and_ends_thirty_before_sunrise() -> None:
    st = sun_times(*TOWNSHIP, date(2026, 12, 1), SH)
    assert not is_night(st.sunset + 29 * 60, *TOWNSHIP, SH)
    assert is_night(st.sunset + 31 * 60, *TOWNSHIP, SH)
    assert is_night(st.sunrise - 31 * 60, *TOWNSHIP, SH)
    assert not is_night(st.sunrise - 29 * 60, *TOWNSHIP, SH)
    assert not is_night((st.sunrise + st.sunset) / 2, *TOWNSHIP, SH)


def test_sun_schedule_switches_at_sunset_and_sunrise_plus_offsets() -> None:
    d = date(2026, 12, 1)
    today, tomorrow = sun_times(*TOWNSHIP, d, SH), sun_times(*TOWNSHIP, date(2026, 12, 2), SH)
    noon = datetime(2026, 12, 1, 12, 0, tzinfo=SH).timestamp()
    on, off = next_transitions(SunSchedule(on_offset_min=-15, off_offset_min=20), noon, *TOWNSHIP, SH)
    assert on == pytest.approx(today.sunset - 15 * 60)
    assert off == pytest.approx(tomorrow.sunrise + 20 * 60)
    assert not lit_now(on, off)
    evening = today.sunset + 3600
    on, off = next_transitions(SunSchedule(), evening, *TOWNSHIP, SH)
    assert lit_now(on, off) and off == pytest.approx(tomorrow.sunrise)


def test_fixed_schedule_uses_local_time_and_rolls_to_the_next_day() -> None:
    sched = FixedSchedule(time(18, 30), time(5, 45), 80)
    at = datetime(2026, 12, 1, 20, 0, tzinfo=SH).timestamp()
    on, off = next_transitions(sched, at, *TOWNSHIP, SH)
    assert datetime.fromtimestamp(on, SH) == datetime(2026, 12, 2, 18, 30, tzinfo=SH)
    assert datetime.fromtimestamp(off, SH) == datetime(2026, 12, 2, 5, 45, tzinfo=SH)
    assert lit_now(on, off)
    assert sched.wire() == {"mode": "fixed", "on": "18:30", "off": "05:45", "level": 80}


@pytest.mark.parametrize("bad", ["1830", "24:00", "18:60", "8:30", "ab:cd", ""])
def test_bad_hhmm_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_hhmm(bad)
