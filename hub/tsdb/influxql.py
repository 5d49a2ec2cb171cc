"""InfluxQL building and result decoding for the v1 store (pure functions, no I/O)."""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Mapping
from typing import Any

from hub.messages import Point
from hub.tsdb.base import Bucket, SeriesQuery

_DURATION = re.compile(r"^(?:INF|\d+(?:ns|u|µ|ms|s|m|h|d|w))+$", re.IGNORECASE)


def quote_ident(name: str) -> str:
    """A double-quoted InfluxQL identifier."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_literal(value: str) -> str:
    """A single-quoted InfluxQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def check_duration(text: str) -> str:
    """An InfluxQL duration such as `0s` (forever), `90d`, `52w`; ValueError otherwise."""
    if not _DURATION.match(text):
        raise ValueError(f"not an InfluxQL duration: {text!r} (examples: 0s for forever, 90d, 52w)")
    return text


def retention_seconds(text: str | None) -> int:
    """`0s`/None → 0 (forever); `90d`, `52w`, `720h` → seconds."""
    if not text or text.upper() == "INF":
        return 0
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    if text[-1] not in units or not text[:-1].isdigit():
        raise ValueError(f"retention must look like 90d, 52w or 0s: {text!r}")
    return int(text[:-1]) * units[text[-1]]


def duration_literal(seconds: float) -> str:
    """A bucket width as an InfluxQL duration literal (ms when not whole seconds)."""
    if seconds <= 0:
        raise ValueError("bucket width must be positive")
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    ms = round(seconds * 1000)
    if ms <= 0:
        raise ValueError("bucket width under a millisecond")
    return f"{ms}ms"


def _ns(seconds: float) -> int:
    return round(seconds * 1_000_000) * 1_000


def _where(
    tags: Iterable[tuple[str, str]], start: float | None, end: float | None
) -> str:
    conds = []
    if start is not None:
        conds.append(f"time >= {_ns(start)}")
    if end is not None:
        conds.append(f"time < {_ns(end)}")
    conds.extend(f"{quote_ident(k)} = {quote_literal(v)}" for k, v in tags)
    return (" WHERE " + " AND ".join(conds)) if conds else ""


def source(measurement: str, rp: str | None) -> str:
    return f"{quote_ident(rp)}.{quote_ident(measurement)}" if rp else quote_ident(measurement)


def series_statement(q: SeriesQuery, rp: str | None = None) -> str:
    """`SELECT mean("x") FROM … WHERE … GROUP BY time(Ns) fill(none)`."""
    return (
        f"SELECT {q.aggregate}({quote_ident(q.field)}) FROM {source(q.measurement, rp)}"
        f"{_where(q.tags, q.start, q.end)} GROUP BY time({duration_literal(q.every)}) fill(none)"
    )


def read_statement(
    measurement: str,
    tags: Mapping[str, str] | None,
    start: float | None,
    end: float | None,
    limit: int,
    rp: str | None = None,
) -> str:
    """Raw points; `GROUP BY *` keeps tags apart from fields (LIMIT is per series)."""
    return (
        f"SELECT * FROM {source(measurement, rp)}{_where(sorted((tags or {}).items()), start, end)}"
        f" GROUP BY * ORDER BY time ASC LIMIT {int(limit)}"
    )


def first_result(body: Mapping[str, Any]) -> dict[str, Any]:
    """The first statement's result; raises ValueError with InfluxDB's error text."""
    if "error" in body:
        raise ValueError(str(body["error"]))
    results = body.get("results") or [{}]
    result = dict(results[0])
    if "error" in result:
        raise ValueError(str(result["error"]))
    return result


def decode_buckets(result: Mapping[str, Any]) -> list[Bucket]:
    out: list[Bucket] = []
    for series in result.get("series", []) or []:
        for t, value in series.get("values", []):
            out.append(Bucket(start=t / 1e9, value=None if value is None else float(value)))
    out.sort(key=lambda b: b.start)
    return out


def coerce(value: Any, influx_type: str | None) -> Any:
    """JSON gives 25 for the float 25.0: restore the stored type from SHOW FIELD KEYS."""
    if influx_type == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if influx_type == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def decode_points(
    measurement: str,
    result: Mapping[str, Any],
    field_types: Mapping[str, str],
    limit: int,
) -> list[Point]:
    """Series of a `GROUP BY *` read → points in time order (merged across series)."""
    per_series: list[list[Point]] = []
    for series in result.get("series", []) or []:
        tags = {k: v for k, v in (series.get("tags") or {}).items() if v != ""}
        cols: list[str] = series["columns"]
        rows = []
        for values in series.get("values", []):
            fields = {
                c: coerce(v, field_types.get(c))
                for c, v in zip(cols[1:], values[1:], strict=True)
                if v is not None
            }
            rows.append(Point(measurement, dict(tags), fields, values[0] / 1e9))
        per_series.append(rows)
    merged = heapq.merge(*per_series, key=lambda p: p.time)
    return [p for _, p in zip(range(limit), merged, strict=False)]


def decode_field_types(result: Mapping[str, Any]) -> dict[str, str]:
    types: dict[str, str] = {}
    for series in result.get("series", []) or []:
        for key, kind in series.get("values", []):
            types[key] = kind
    return types


def raw_statement(q: SeriesQuery, rp: str | None = None) -> str:
    """The field's raw values over the range (for aggregates InfluxQL refuses on booleans)."""
    return (
        f"SELECT {quote_ident(q.field)} FROM {source(q.measurement, rp)}"
        f"{_where(q.tags, q.start, q.end)}"
    )


def aggregate_buckets(
    samples: Iterable[tuple[int, float]], every: float, aggregate: str
) -> list[Bucket]:
    """(time ns, value) samples → epoch-aligned buckets, as InfluxDB's GROUP BY time() does."""
    width = round(every * 1e9)
    groups: dict[int, list[tuple[int, float]]] = {}
    for t, v in samples:
        groups.setdefault(t // width * width, []).append((t, v))
    out = []
    for start in sorted(groups):
        values = groups[start]
        nums = [v for _, v in values]
        if aggregate == "mean":
            value = sum(nums) / len(nums)
        elif aggregate == "min":
            value = min(nums)
        elif aggregate == "max":
            value = max(nums)
        elif aggregate == "sum":
            value = sum(nums)
        elif aggregate == "count":
            value = float(len(nums))
        elif aggregate == "last":
            value = max(values, key=lambda tv: tv[0])[1]
        else:
            raise ValueError(f"unknown aggregate {aggregate!r}")
        out.append(Bucket(start=start / 1e9, value=float(value)))
    return out


def decode_samples(result: Mapping[str, Any]) -> list[tuple[int, float]]:
    """Raw `SELECT field` rows → (time ns, numeric value); booleans count as 1/0."""
    samples = []
    for series in result.get("series", []) or []:
        for t, v in series.get("values", []):
            if isinstance(v, bool | int | float):
                samples.append((int(t), float(v)))
    return samples
