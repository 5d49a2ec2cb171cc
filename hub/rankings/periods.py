"""Ranking periods (pure): `2026-Q4` (quarter), `2026-11` (month), `2026-W48` (ISO week),
each from local midnight to local midnight in the hub's time zone (VH_TZ)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Kind = Literal["quarter", "month", "week"]
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
MIN_YEAR, MAX_YEAR = 2000, 2199


class PeriodError(ValueError):
    """A period key that does not parse (the API answers 422 naming `period`)."""


@dataclass(frozen=True, slots=True)
class Period:
    key: str
    kind: Kind
    first_day: date  # local
    end_day: date  # local, exclusive
    zone: ZoneInfo

    @property
    def start(self) -> float:
        return _midnight(self.first_day, self.zone)

    @property
    def end(self) -> float:
        return _midnight(self.end_day, self.zone)

    def start_iso(self) -> str:
        return datetime.fromtimestamp(self.start, self.zone).isoformat()

    def end_iso(self) -> str:
        return datetime.fromtimestamp(self.end, self.zone).isoformat()

    @property
    def label(self) -> str:
        """The Chinese name for the printed ranking."""
        if self.kind == "quarter":
            return f"{self.first_day.year}年第{'一二三四'[(self.first_day.month - 1) // 3]}季度"
        if self.kind == "month":
            return f"{self.first_day.year}年{self.first_day.month}月"
        year, week, _ = self.first_day.isocalendar()
        return f"{year}年第{week}周"

    def previous(self) -> Period:
        """The period of the same kind just before this one."""
        return containing(self.kind, self.first_day - timedelta(days=1), self.zone)

    def next(self) -> Period:
        return containing(self.kind, self.end_day, self.zone)


def _midnight(day: date, zone: ZoneInfo) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()


def _check_year(year: int, key: str) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise PeriodError(f"{key!r}: the year must be between {MIN_YEAR} and {MAX_YEAR}")


def parse_period(key: str, zone: ZoneInfo) -> Period:
    key = key.strip()
    if m := _QUARTER.match(key):
        year, q = int(m.group(1)), int(m.group(2))
        _check_year(year, key)
        return containing("quarter", date(year, 3 * q - 2, 1), zone)
    if m := _MONTH.match(key):
        year, month = int(m.group(1)), int(m.group(2))
        _check_year(year, key)
        if not 1 <= month <= 12:
            raise PeriodError(f"{key!r}: the month must be 01–12")
        return containing("month", date(year, month, 1), zone)
    if m := _WEEK.match(key):
        year, week = int(m.group(1)), int(m.group(2))
        _check_year(year, key)
        try:
            monday = date.fromisocalendar(year, week, 1)
        except ValueError:
            weeks = date(year, 12, 28).isocalendar()[1]
            raise PeriodError(f"{key!r}: ISO year {year} has weeks W01–W{weeks:02d}") from None
        return containing("week", monday, zone)
    raise PeriodError(f"{key[:32]!r}: use a quarter (2026-Q4), a month (2026-11) or an ISO week (2026-W48)")


def containing(kind: Kind, day: date, zone: ZoneInfo) -> Period:
    """The period of `kind` that contains the local `day`."""
    if kind == "quarter":
        first = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
        end = date(first.year + (first.month == 10), (first.month + 2) % 12 + 1, 1)
        return Period(f"{first.year}-Q{(first.month - 1) // 3 + 1}", "quarter", first, end, zone)
    if kind == "month":
        first = date(day.year, day.month, 1)
        end = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
        return Period(f"{first.year}-{first.month:02d}", "month", first, end, zone)
    year, week, weekday = day.isocalendar()
    monday = day - timedelta(days=weekday - 1)
    return Period(f"{year}-W{week:02d}", "week", monday, monday + timedelta(days=7), zone)


def local_day(ts: float, zone: ZoneInfo) -> date:
    return datetime.fromtimestamp(ts, zone).date()


def current(kind: Kind, now: float, zone: ZoneInfo) -> Period:
    return containing(kind, local_day(now, zone), zone)


def recent(now: float, zone: ZoneInfo, quarters: int = 4, months: int = 6, weeks: int = 8) -> list[Period]:
    """The current and recent periods of each kind, newest first within each kind."""
    out: list[Period] = []
    for kind, n in (("quarter", quarters), ("month", months), ("week", weeks)):
        p = current(kind, now, zone)  # type: ignore[arg-type]
        for _ in range(n):
            out.append(p)
            p = p.previous()
    return out
