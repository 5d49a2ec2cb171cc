"""Sunrise and sunset for the township's coordinates (astral, NOAA formulas). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Final
from zoneinfo import ZoneInfo

from astral import Observer
from astral.sun import sunrise, sunset

NIGHT_MARGIN_S: Final = 30 * 60  # "night" for alarms: sunset + 30 min … sunrise − 30 min


class NoSunEvent(ValueError):
    """The sun does not rise or set that day at that latitude (polar day or night)."""


@dataclass(frozen=True, slots=True)
class SunTimes:
    day: date
    sunrise: float  # Unix s
    sunset: float

    def iso(self, tz: ZoneInfo) -> tuple[str, str]:
        return (datetime.fromtimestamp(self.sunrise, tz).isoformat(timespec="seconds"),
                datetime.fromtimestamp(self.sunset, tz).isoformat(timespec="seconds"))


def sun_times(lat: float, lon: float, day: date, tz: ZoneInfo) -> SunTimes:
    """Sunrise and sunset of the local calendar day `day` in `tz` at (lat, lon)."""
    obs = Observer(latitude=lat, longitude=lon)
    try:
        rise = sunrise(obs, day, tzinfo=tz)
        set_ = sunset(obs, day, tzinfo=tz)
    except ValueError as exc:
        raise NoSunEvent(str(exc)) from None
    return SunTimes(day, rise.timestamp(), set_.timestamp())


def local_day(ts: float, tz: ZoneInfo) -> date:
    return datetime.fromtimestamp(ts, tz).date()


def is_night(ts: float, lat: float, lon: float, tz: ZoneInfo, margin_s: float = NIGHT_MARGIN_S) -> bool:
    """True between sunset + margin and the next sunrise − margin (the lamps must be lit)."""
    try:
        st = sun_times(lat, lon, local_day(ts, tz), tz)
    except NoSunEvent:
        return False  # no alarms on polar days/nights: there is no dusk to judge by
    return ts >= st.sunset + margin_s or ts <= st.sunrise - margin_s
