"""Lamp schedules (pure): fixed local times or sun mode → the next on and off times.

Sun mode: on at sunset + `on_offset_min`, off at sunrise + `off_offset_min`, for the
township's coordinates. Fixed mode: `on`/`off` as HH:MM in the hub's time zone (VH_TZ).
The hub sends both the rule and the absolute `next_on`/`next_off` (Unix s); lamp firmware
repeats them daily (docs/devices.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hub.lights.sun import NoSunEvent, local_day, sun_times


@dataclass(frozen=True, slots=True)
class SunSchedule:
    on_offset_min: int = 0
    off_offset_min: int = 0
    level: int = 100

    def wire(self) -> dict[str, Any]:
        return {"mode": "sun", "on_offset_min": self.on_offset_min, "off_offset_min": self.off_offset_min,
                "level": self.level}


@dataclass(frozen=True, slots=True)
class FixedSchedule:
    on: time
    off: time
    level: int = 100

    def wire(self) -> dict[str, Any]:
        return {"mode": "fixed", "on": self.on.strftime("%H:%M"), "off": self.off.strftime("%H:%M"),
                "level": self.level}


Schedule = SunSchedule | FixedSchedule


def parse_hhmm(text: str) -> time:
    """`HH:MM` (00:00–23:59) → time; ValueError otherwise."""
    hh, sep, mm = text.partition(":")
    if not sep or len(hh) != 2 or len(mm) != 2 or not (hh.isdigit() and mm.isdigit()):
        raise ValueError("must be HH:MM, e.g. 18:30")
    h, m = int(hh), int(mm)
    if h > 23 or m > 59:
        raise ValueError("must be HH:MM between 00:00 and 23:59")
    return time(h, m)


def _next_local(at: time, now: float, tz: ZoneInfo) -> float:
    day = local_day(now, tz)
    for k in range(0, 3):
        t = datetime.combine(day + timedelta(days=k), at, tz).timestamp()
        if t > now:
            return t
    raise AssertionError("unreachable: a local time recurs within two days")


def _next_sun(now: float, lat: float, lon: float, tz: ZoneInfo, event: str, offset_min: int) -> float:
    day = local_day(now, tz)
    for k in range(-1, 4):  # offsets up to ±3 h can move an event across midnight
        try:
            st = sun_times(lat, lon, day + timedelta(days=k), tz)
        except NoSunEvent:
            continue
        t = (st.sunset if event == "sunset" else st.sunrise) + offset_min * 60
        if t > now:
            return t
    raise NoSunEvent(f"no {event} within three days at ({lat}, {lon})")


def next_transitions(schedule: Schedule, now: float, lat: float, lon: float, tz: ZoneInfo) -> tuple[float, float]:
    """(next_on, next_off): the first switch-on and switch-off strictly after `now`."""
    if isinstance(schedule, FixedSchedule):
        return _next_local(schedule.on, now, tz), _next_local(schedule.off, now, tz)
    return (_next_sun(now, lat, lon, tz, "sunset", schedule.on_offset_min),
            _next_sun(now, lat, lon, tz, "sunrise", schedule.off_offset_min))


def lit_now(next_on: float, next_off: float) -> bool:
    """Whether a lamp on this schedule should be lit now: its next change puts it out."""
    return next_off < next_on
