"""When a broadcast is due: RFC 5545 recurrence (python-dateutil) and quiet hours. Pure.

The rrule is evaluated in the wall-clock time of a zone, so "every day at 07:30" stays at
07:30 local across a DST change. Which zone:
  1. `schedule.tz` when given (an IANA name);
  2. else the hub's zone (VH_TZ) when `start` has no offset or its offset matches VH_TZ at
     that instant (the usual case: `2026-12-01T07:30:00+08:00` in Asia/Shanghai);
  3. else the fixed offset written in `start`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from itertools import islice
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule, rrulestr

from hub.quiethours import QuietHours

MAX_CALENDAR_ITEMS = 2000
MAX_FIRST_GAP_DAYS = 800
_FREQ_RE = re.compile(r"FREQ=([A-Z]+)")


class ScheduleError(ValueError):
    """A schedule that cannot be evaluated; the message names what to fix."""


@dataclass(frozen=True, slots=True)
class Recurrence:
    """A parsed schedule: its first time and, optionally, the rule that repeats it."""

    dtstart: datetime  # aware, in the evaluation zone
    rule: rrule | None

    @property
    def first(self) -> float:
        return self.first_at_or_after(self.dtstart.timestamp()) or self.dtstart.timestamp()

    def first_at_or_after(self, ts: float) -> float | None:
        return self._after(ts, inclusive=True)

    def next_after(self, ts: float) -> float | None:
        """The first occurrence strictly after `ts` (Unix s), or None when the rule has ended."""
        return self._after(ts, inclusive=False)

    def _after(self, ts: float, *, inclusive: bool) -> float | None:
        if self.rule is None:
            t = self.dtstart.timestamp()
            return t if (t >= ts if inclusive else t > ts) else None
        at = datetime.fromtimestamp(ts, self.dtstart.tzinfo)
        nxt = self.rule.after(at, inc=inclusive)
        return None if nxt is None else nxt.timestamp()

    def between(self, start: float, end: float, limit: int = MAX_CALENDAR_ITEMS) -> list[float]:
        """Occurrences in [start, end], lazily expanded, at most `limit`."""
        if self.rule is None:
            t = self.dtstart.timestamp()
            return [t] if start <= t <= end else []
        tz = self.dtstart.tzinfo
        a, b = datetime.fromtimestamp(start, tz), datetime.fromtimestamp(end, tz)
        out: list[float] = []
        for d in islice(self.rule.xafter(a, inc=True), limit):
            if d > b:
                break
            out.append(d.timestamp())
        return out


def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {name!r}; use an IANA name such as Asia/Shanghai") from None


def evaluation_zone(start: datetime, tz: str | None, hub_zone: str) -> tzinfo:
    if tz:
        return zone_of(tz)
    hub = zone_of(hub_zone)
    if start.tzinfo is None or start.utcoffset() == start.astimezone(hub).utcoffset():
        return hub
    assert start.tzinfo is not None
    return start.tzinfo


def parse_recurrence(start: str | None, rule: str | None, tz: str | None, hub_zone: str,
                     now: float) -> Recurrence:
    """`start` (ISO 8601, None = now) and an RFC 5545 RRULE → a Recurrence.

    Raises ScheduleError with an operator-readable message.
    """
    zone: tzinfo
    if start is None:
        zone = zone_of(tz or hub_zone)
        # Whole seconds: rrule drops microseconds, and "now" must stay its first occurrence.
        dtstart = datetime.fromtimestamp(now, zone).replace(microsecond=0)
    else:
        try:
            parsed = datetime.fromisoformat(start)
        except ValueError:
            raise ScheduleError(f"start {start!r} is not an ISO 8601 date-time") from None
        zone = evaluation_zone(parsed, tz, hub_zone)
        dtstart = parsed.replace(tzinfo=zone) if parsed.tzinfo is None else parsed.astimezone(zone)
    if not rule:
        return Recurrence(dtstart, None)
    return Recurrence(dtstart, parse_rule(rule, dtstart))


def parse_rule(rule: str, dtstart: datetime) -> rrule:
    """An RFC 5545 RRULE (python-dateutil) with the limits broadcasts need.

    Periods shorter than an hour are refused, and the rule must yield an occurrence within
    MAX_FIRST_GAP_DAYS of its start: dateutil searches rules that never match (e.g. 31
    February) for thousands of years, which must not happen on a request or in the scheduler.
    """
    text = rule.strip()
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    if "DTSTART" in text.upper():
        raise ScheduleError("rrule must not carry DTSTART; the schedule's start is used")
    freq = _FREQ_RE.search(text.upper())
    if freq and freq.group(1) in ("SECONDLY", "MINUTELY"):
        raise ScheduleError(f"rrule FREQ={freq.group(1)} is not allowed; the shortest is HOURLY")
    try:
        parsed = rrulestr(text, dtstart=dtstart)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ScheduleError(f"rrule {rule!r} is not a valid RFC 5545 RRULE: {exc}") from None
    if not isinstance(parsed, rrule):
        raise ScheduleError("rrule must be a single RRULE")
    never = ScheduleError(f"rrule {rule!r} has no occurrence within {MAX_FIRST_GAP_DAYS} days "
                          "of the start")
    # dateutil checks UNTIL only on matches, so a rule whose day filters never match runs to
    # the year 9999 day by day (seconds of CPU). A yearly rule over the same day filters
    # (a superset of the days) answers "never" in one pass over the years instead.
    if rrulestr(_days_superset(text), dtstart=dtstart).after(dtstart, inc=True) is None:
        raise never
    first = parsed.after(dtstart, inc=True)
    if first is None or first - dtstart > timedelta(days=MAX_FIRST_GAP_DAYS):
        raise never
    return parsed


_DAY_PARTS = ("BYMONTH", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYDAY")


def _days_superset(text: str) -> str:
    """FREQ=YEARLY with only the rule's day filters (BYDAY without ordinals): every day the
    rule could ever fall on, and more."""
    parts = dict(p.split("=", 1) for p in text.upper().split(";") if "=" in p)
    keep = {k: v for k, v in parts.items() if k in _DAY_PARTS}
    if "BYDAY" in keep:
        keep["BYDAY"] = ",".join(sorted({d.lstrip("+-0123456789") for d in keep["BYDAY"].split(",")}))
    if not keep.keys() - {"BYMONTH"}:  # else dateutil would default to the start's day
        keep["BYMONTHDAY"] = ",".join(str(d) for d in range(1, 32))
    return ";".join(["FREQ=YEARLY", *(f"{k}={v}" for k, v in keep.items())])


# --- quiet hours ------------------------------------------------------------------

DEFAULT_QUIET_HOURS = QuietHours()


def quiet_hours_end(ts: float, qh: QuietHours, zone: tzinfo) -> float | None:
    """None when `ts` is outside the window, else the Unix time the window ends (local clock)."""
    local = datetime.fromtimestamp(ts, zone)
    if not qh.contains(local.time().replace(tzinfo=None)):
        return None
    end = datetime.combine(local.date(), qh.end, tzinfo=zone)
    if end <= local:
        end = datetime.combine(local.date() + timedelta(days=1), qh.end, tzinfo=zone)
    return end.timestamp()


def apply_quiet_hours(
    ts: float, *, priority: int, policy: str, qh: QuietHours, zone: tzinfo, emergency_from: int = 8
) -> tuple[float | None, str]:
    """When a play due at `ts` may start in a village: (time, reason).

    Emergencies ignore quiet hours. Inside them a routine play is postponed to their end
    (`postpone`, the default) or dropped (`skip` → (None, "quiet_hours")).
    """
    if priority >= emergency_from:
        return ts, ""
    end = quiet_hours_end(ts, qh, zone)
    if end is None:
        return ts, ""
    if policy == "skip":
        return None, "quiet_hours"
    return end, "postponed_quiet_hours"


# --- the scheduler's decision ------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Due:
    broadcast_id: str
    nominal_at: float
    fate: str  # "fire" | "missed"


DEFAULT_GRACE_S = 600.0


def due(next_times: dict[str, float], now: float, grace_s: float = DEFAULT_GRACE_S) -> list[Due]:
    """Which broadcasts' next occurrence is due at `now`, and whether it still fires.

    One missed while the hub was down fires late when at most `grace_s` late, else it is
    recorded `missed` (the caller then asks again with the following occurrence).
    """
    out = [
        Due(bid, at, "fire" if now - at <= grace_s else "missed")
        for bid, at in next_times.items()
        if at <= now
    ]
    out.sort(key=lambda d: (d.nominal_at, d.broadcast_id))
    return out
