"""Query-string time values: Unix seconds, ISO 8601 times, relative times and durations. Pure."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, None: 1.0}


def parse_duration(value: str) -> float:
    """`30`, `30s`, `5m`, `1h`, `7d` → seconds."""
    m = _DURATION.match(value)
    if not m:
        raise ValueError(f"not a duration: {value!r} (use e.g. 60, 30s, 5m, 1h, 7d)")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_time(value: str, now: float, zone: ZoneInfo) -> float:
    """Unix seconds, `now`, `-1h` (relative to now) or ISO 8601 (local zone when none is given)."""
    v = value.strip()
    if v == "now":
        return now
    if v.startswith("-"):
        return now - parse_duration(v[1:])
    try:
        return float(v)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a time: {value!r} (use Unix seconds, ISO 8601, now or -1h)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=zone)
    return dt.timestamp()
