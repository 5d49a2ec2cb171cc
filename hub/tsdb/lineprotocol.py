"""Fast InfluxDB line-protocol serializer (the hot path of ingest).

Escaping follows InfluxDB's line protocol and matches influxdb-client's `Point` serializer,
which the tests use as the oracle:

- measurement: `,` and space escaped;
- tag keys, tag values, field keys: `,`, `=` and space escaped;
- newline, tab and carriage return in any of those become the two-character escapes `\\n`,
  `\\t`, `\\r` (so a line never breaks); a tag value ending in a backslash gets a trailing
  space (influxdb-client's rule, so the backslash cannot escape the separator);
- string field values: `"` and `\\` escaped (a newline inside a quoted string is legal line
  protocol and kept as it is; the spool frames records by length, not by newline).

Values: `bool` → `true`/`false`; `int` → `123i` (int64 range, else the field is dropped);
`float` → shortest repr with a trailing `.0` trimmed (NaN and ±inf are dropped: InfluxDB
cannot store them); `str` → quoted. Tags with an empty value (or `None`) are omitted. Tags
and fields are written sorted by key (InfluxDB's preferred order; also the oracle's).

Time: `Point.time` is Unix seconds as a float; it is written as integer nanoseconds,
rounded to the microsecond (a float of today's Unix time carries no more than that).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from typing import Any

from hub.messages import Point

log = logging.getLogger(__name__)

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1

_ESCAPE_MEASUREMENT = str.maketrans(
    {",": r"\,", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"}
)
_ESCAPE_KEY = str.maketrans(
    {",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"}
)
_ESCAPE_STRING = str.maketrans({'"': r"\"", "\\": r"\\"})

# Names and tag values repeat endlessly (a few measurements, field names, device ids):
# escape each distinct one once. Bounded so hostile input cannot grow it forever.
_CACHE_MAX = 200_000
_key_cache: dict[str, str] = {}
_tag_value_cache: dict[str, str] = {}
_measurement_cache: dict[str, str] = {}


class LineProtocolError(ValueError):
    """The point cannot be written as line protocol (no usable field, bad measurement)."""


def _remember(cache: dict[str, str], raw: str, escaped: str) -> str:
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    cache[raw] = escaped
    return escaped


def escape_measurement(name: str) -> str:
    cached = _measurement_cache.get(name)
    if cached is not None:
        return cached
    if not name:
        raise LineProtocolError("empty measurement name")
    escaped = name.translate(_ESCAPE_MEASUREMENT)
    if escaped.startswith("#"):
        raise LineProtocolError(f"measurement {name!r} would be read as a comment")
    return _remember(_measurement_cache, name, escaped)


def escape_key(key: str) -> str:
    cached = _key_cache.get(key)
    if cached is not None:
        return cached
    return _remember(_key_cache, key, key.translate(_ESCAPE_KEY))


def escape_tag_value(value: str) -> str:
    cached = _tag_value_cache.get(value)
    if cached is not None:
        return cached
    escaped = value.translate(_ESCAPE_KEY)
    if escaped.endswith("\\"):
        escaped += " "
    return _remember(_tag_value_cache, value, escaped)


def escape_string_field(value: str) -> str:
    if '"' in value or "\\" in value:
        return value.translate(_ESCAPE_STRING)
    return value


def format_field_value(value: object) -> str | None:
    """The line-protocol text of one field value, or None when it cannot be stored."""
    cls = type(value)
    if cls is float:
        if not math.isfinite(value):  # type: ignore[arg-type]
            return None
        s = repr(value)
        return s[:-2] if s.endswith(".0") else s
    if cls is int:
        if _INT64_MIN <= value <= _INT64_MAX:  # type: ignore[operator]
            return f"{value}i"
        return None
    if cls is str:
        return f'"{escape_string_field(value)}"'  # type: ignore[arg-type]
    if cls is bool:
        return "true" if value else "false"
    # Subclasses (IntEnum, numpy scalars via their Python types) take the slow path.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return format_field_value(int(value))
    if isinstance(value, float):
        return format_field_value(float(value))
    if isinstance(value, str):
        return format_field_value(str(value))
    return None


def time_ns(seconds: float) -> int:
    """Unix seconds (float) → integer nanoseconds, rounded to the microsecond."""
    return round(seconds * 1_000_000) * 1_000


_head_cache: dict[tuple[object, ...], str] = {}


def _head(measurement: str, tags: dict[str, str]) -> str:
    """`measurement,tag=value,...` (escaped, sorted, empty values left out), cached."""
    key = (measurement, *tags.items())
    head = _head_cache.get(key)
    if head is not None:
        return head
    parts = [escape_measurement(measurement)]
    for k in sorted(tags):
        v = tags[k]
        if v is None or v == "" or k == "":
            continue
        parts.append(f",{escape_key(k)}={escape_tag_value(str(v))}")
    head = "".join(parts)
    if len(_head_cache) >= _CACHE_MAX:
        _head_cache.clear()
    _head_cache[key] = head
    return head


_layout_cache: dict[tuple[str, ...], list[tuple[str, str]]] = {}


def _layout(fields: dict[str, object]) -> list[tuple[str, str]]:
    """Sorted (key, escaped key) pairs for one set of field names (empty keys left out), cached."""
    layout = [(k, escape_key(k)) for k in sorted(fields) if k]
    if len(_layout_cache) >= _CACHE_MAX:
        _layout_cache.clear()
    _layout_cache[tuple(fields)] = layout
    return layout


def line_head(measurement: str, tags: dict[str, str]) -> str:
    """The escaped `measurement,tag=value,...` part of a line (cached): callers that write many
    points of one series (a device's heartbeats) keep it and call `encode_line`."""
    return _head(measurement, tags)


def encode_point(p: Point) -> str:
    """One point as one line of line protocol. Raises LineProtocolError when unwritable."""
    return encode_line(_head(p.measurement, p.tags), p.fields, p.time, p.measurement)


def encode_line(head: str, fs: dict[str, Any], time: float, measurement: str = "") -> str:
    """A line from its head (`line_head`), fields and time (Unix seconds). Raises
    LineProtocolError when no field can be stored."""
    names = tuple(fs)
    compiled = _compiled.get(names)
    if compiled is not None:
        line = compiled(head, fs, time)
        if line is not None:
            return line
        _missed(names)
    elif _seen_layout(names):
        _compiled[names] = _Pending(names)
    return _encode_line_generic(head, fs, time, measurement)


def _encode_line_generic(head: str, fs: dict[str, Any], time: float, measurement: str = "") -> str:
    fields: list[str] = []
    append = fields.append
    layout = _layout_cache.get(tuple(fs)) or _layout(fs)
    for k, ek in layout:
        v = fs[k]
        cls = type(v)
        if cls is float:
            if v - v != 0.0:  # NaN or ±inf
                continue
            text = repr(v)
            if text.endswith(".0"):
                text = text[:-2]
        elif cls is int and _INT64_MIN <= v <= _INT64_MAX:
            text = f"{v}i"
        elif cls is str:
            text = f'"{v.translate(_ESCAPE_STRING)}"' if ('"' in v or "\\" in v) else f'"{v}"'
        elif cls is bool:
            text = "true" if v else "false"
        else:
            maybe = format_field_value(v)
            if maybe is None:
                continue
            text = maybe
        append(f"{ek}={text}")
    if not fields:
        raise LineProtocolError(f"{measurement or head}: no storable field in {sorted(fs)}")
    return f"{head} {','.join(fields)} {round(time * 1_000_000) * 1_000}"


# --- compiled encoders ------------------------------------------------------------------------
# A device's heartbeats have the same field names with the same value types, line after line.
# For a set of names seen `_COMPILE_AFTER` times, one straight-line function is generated for
# the value types of that moment: no loop, no per-field dispatch, one f-string (2.4 µs instead
# of 6 µs for a heartbeat). It answers None as soon as a value does not fit the types it was
# made for (another type, NaN/±inf, an int past int64, a string that needs escaping), and the
# generic encoder above takes that line: the output is the same (tests/unit/test_lineprotocol.py).
# Field names never enter the generated source: they are constants bound by position.
_COMPILE_AFTER = 8
_COMPILED_MAX = 1_000
_compiled: dict[tuple[str, ...], Callable[[str, dict[str, Any], float], str | None]] = {}
_layout_seen: dict[tuple[str, ...], int] = {}
_misses: dict[tuple[str, ...], int] = {}
_RECOMPILE_EVERY = 64
_FAILED: Callable[[str, dict[str, Any], float], str | None] = lambda _h, _f, _t: None  # noqa: E731


def _seen_layout(names: tuple[str, ...]) -> bool:
    n = _layout_seen.get(names, 0) + 1
    if len(_layout_seen) >= _CACHE_MAX:
        _layout_seen.clear()
    _layout_seen[names] = n
    return n >= _COMPILE_AFTER and len(_compiled) < _COMPILED_MAX


def _missed(names: tuple[str, ...]) -> None:
    """A line the compiled encoder did not fit: after `_RECOMPILE_EVERY` such lines it is made
    again from the next line's types (a few times at most: mixed types stay generic)."""
    n = _misses.get(names, 0) + 1
    if len(_misses) >= _CACHE_MAX:
        _misses.clear()
    _misses[names] = n
    if n % _RECOMPILE_EVERY == 0 and n <= 4 * _RECOMPILE_EVERY:
        _compiled[names] = _Pending(names)


class _Pending:
    """Compiles on its first call, from that line's value types."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names

    def __call__(self, head: str, fs: dict[str, Any], time: float) -> str | None:
        enc = _generate(fs)
        _compiled[self.names] = enc
        return enc(head, fs, time)


def _generate(fs: dict[str, Any]) -> Callable[[str, dict[str, Any], float], str | None]:
    consts: dict[str, Any] = {"_float": float, "_int": int, "_str": str, "_bool": bool, "_repr": repr,
                              "_round": round, "_MIN": _INT64_MIN, "_MAX": _INT64_MAX}
    lines: list[str] = []
    parts: list[str] = []
    order = sorted((k, i) for i, k in enumerate(fs) if k)  # field order of the generic encoder
    if not order:
        return _FAILED
    for k, i in order:
        v = fs[k]
        cls = type(v)
        consts[f"k{i}"] = k
        consts[f"e{i}"] = escape_key(k)
        lines.append(f"    v{i} = fs[k{i}]")
        if cls is float:
            lines += [f"    if type(v{i}) is not _float or v{i} - v{i} != 0.0: return None",
                      f"    r{i} = _repr(v{i})",
                      f"    if r{i}[-2:] == '.0': r{i} = r{i}[:-2]"]
            parts.append(f"{{e{i}}}={{r{i}}}")
        elif cls is bool:
            lines.append(f"    if type(v{i}) is not _bool: return None")
            parts.append(f"{{e{i}}}={{'true' if v{i} else 'false'}}")
        elif cls is int:
            lines.append(f"    if type(v{i}) is not _int or not _MIN <= v{i} <= _MAX: return None")
            parts.append(f"{{e{i}}}={{v{i}}}i")
        elif cls is str:
            lines.append(f"    if type(v{i}) is not _str or '\"' in v{i} or '\\\\' in v{i}: return None")
            parts.append(f'{{e{i}}}="{{v{i}}}"')
        else:
            return _FAILED  # other types: the generic encoder, always
    body = ",".join(parts)
    lines.append(f"    return f\'\'\'{{head}} {body} {{_round(time * 1_000_000) * 1_000}}\'\'\'")
    # the constants as default arguments: fast locals in the generated function
    signature = ", ".join(f"{name}={name}" for name in consts)
    lines.insert(0, f"def encode(head, fs, time, {signature}):")
    namespace: dict[str, Any] = dict(consts)
    exec("\n".join(lines), namespace)  # generated from value types and positions only
    encode: Callable[[str, dict[str, Any], float], str | None] = namespace["encode"]
    return encode


PointErrorHandler = Callable[[Point, LineProtocolError], None]


def _log_unwritable(p: Point, err: LineProtocolError) -> None:
    log.warning("point not written (device=%s): %s", p.tags.get("device", "?"), err)


def encode_points(
    points: Iterable[Point], on_error: PointErrorHandler | None = _log_unwritable
) -> list[str]:
    """Encode many points; an unwritable one is reported to `on_error` and skipped.

    With `on_error=None` the first unwritable point raises LineProtocolError instead.
    """
    out: list[str] = []
    append = out.append
    for p in points:
        try:
            append(encode_point(p))
        except LineProtocolError as err:
            if on_error is None:
                raise
            on_error(p, err)
    return out
