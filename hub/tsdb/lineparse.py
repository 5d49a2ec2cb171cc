"""Line protocol back to points, with InfluxDB 1.x's own unescaping rules.

Used by the embedded SQLite store (it receives the very lines InfluxDB would) and by tests.
Unescaping mirrors influxd: in measurement, tag keys/values and field keys, a backslash
before `,`, `=`, space or `"` is dropped and any other backslash is kept as it is; in a string
field value `\\"` → `"` and `\\\\` → `\\`.
"""

from __future__ import annotations

import re

from hub.messages import Point


class LineParseError(ValueError):
    """The line is not valid line protocol; the message says where."""


_NAME_ESCAPES = frozenset(',= "')


def _unescape_name(raw: str) -> str:
    if "\\" not in raw:
        return raw
    out: list[str] = []
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c == "\\" and i + 1 < n and raw[i + 1] in _NAME_ESCAPES:
            out.append(raw[i + 1])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _read_name(line: str, i: int, stops: str) -> tuple[str, int]:
    """Read up to the first unescaped char in `stops`; return (unescaped text, index of stop).

    As in influxd, a backslash always pairs with the next character while scanning, then
    only the escapes of `,`, `=`, space and `"` are undone.
    """
    start = i
    n = len(line)
    while i < n:
        c = line[i]
        if c == "\\":
            i += 2
            continue
        if c in stops:
            break
        i += 1
    i = min(i, n)
    return _unescape_name(line[start:i]), i


def _read_string_value(line: str, i: int) -> tuple[str, int]:
    """`i` points after the opening quote; return (value, index after the closing quote)."""
    out: list[str] = []
    n = len(line)
    while i < n:
        c = line[i]
        if c == "\\" and i + 1 < n and line[i + 1] in '"\\':
            out.append(line[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    raise LineParseError("unterminated string field value")


_TRUE = frozenset({"t", "T", "true", "True", "TRUE"})
_FALSE = frozenset({"f", "F", "false", "False", "FALSE"})


def _scalar(text: str) -> bool | int | float:
    if not text:
        raise LineParseError("empty field value")
    last = text[-1]
    if last in "iu" and len(text) > 1:
        try:
            return int(text[:-1])
        except ValueError as err:
            raise LineParseError(f"bad integer {text!r}") from err
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    try:
        value = float(text)
    except ValueError as err:
        raise LineParseError(f"bad field value {text!r}") from err
    if value != value or value in (float("inf"), float("-inf")):
        raise LineParseError(f"non-finite float {text!r}")
    return value


def parse_line(line: str, default_time: float | None = None) -> Point:
    """Parse one line (precision ns). Raises LineParseError with the reason."""
    return parse_line_ns(line, default_time)[0]


_FAST_FIELD = re.compile(r'([^=,"\s]+)=("[^"]*"|[^,"\s]+)(,|\Z)')
_FAST_TIME = re.compile(r"-?[0-9]{1,19}")


def _parse_fast(line: str) -> tuple[Point, int] | None:
    """The common case — no backslash anywhere — with regexes; None means "use the full parser"."""
    if "\\" in line:
        return None
    head_end = line.find(" ")
    if head_end <= 0:
        return None
    parts = line[:head_end].split(",")
    tags: dict[str, str] = {}
    for part in parts[1:]:
        key, eq, value = part.partition("=")
        if not eq or not key or not value or "=" in value or '"' in key:
            return None
        tags[key] = value
    rest = line[head_end + 1 :]
    sp = rest.rfind(" ")
    if sp < 0 or rest.rfind('"') > sp or not _FAST_TIME.fullmatch(rest, sp + 1):
        return None
    text, ns = rest[:sp], int(rest[sp + 1 :])
    fields: dict[str, object] = {}
    pos, n = 0, len(text)
    while pos < n:
        m = _FAST_FIELD.match(text, pos)
        if m is None or (m.group(3) == "" and m.end() != n):
            return None
        raw = m.group(2)
        try:
            fields[m.group(1)] = raw[1:-1] if raw[0] == '"' else _scalar(raw)
        except LineParseError:
            return None
        pos = m.end()
    if not fields or text.endswith(",") or not parts[0] or not -(2**63) <= ns < 2**63:
        return None
    return Point(measurement=parts[0], tags=tags, fields=fields, time=ns / 1e9), ns


def parse_line_ns(line: str, default_time: float | None = None) -> tuple[Point, int]:
    """Parse one line; also return its exact time in integer nanoseconds."""
    fast = _parse_fast(line)
    if fast is not None:
        return fast
    return _parse_full(line, default_time)


def _parse_full(line: str, default_time: float | None) -> tuple[Point, int]:
    n = len(line)
    measurement, i = _read_name(line, 0, ", ")
    if not measurement:
        raise LineParseError("missing measurement")
    tags: dict[str, str] = {}
    while i < n and line[i] == ",":
        key, i = _read_name(line, i + 1, "=, ")
        if i >= n or line[i] != "=":
            raise LineParseError(f"missing tag value for {key!r}")
        value, i = _read_name(line, i + 1, ", ")
        if not key or not value:
            raise LineParseError("empty tag key or value")
        tags[key] = value
    if i >= n or line[i] != " ":
        raise LineParseError("missing fields")
    i += 1
    fields: dict[str, object] = {}
    while True:
        key, i = _read_name(line, i, "= ,")
        if i >= n or line[i] != "=" or not key:
            raise LineParseError(f"bad field {key!r}")
        i += 1
        if i < n and line[i] == '"':
            fields[key], i = _read_string_value(line, i + 1)
        else:
            j = i
            while j < n and line[j] not in ", ":
                j += 1
            fields[key] = _scalar(line[i:j])
            i = j
        if i < n and line[i] == ",":
            i += 1
            continue
        break
    if i < n and line[i] == " ":
        ts_text = line[i + 1 :].strip()
        try:
            ns = int(ts_text)
        except ValueError as err:
            raise LineParseError(f"bad timestamp {ts_text!r}") from err
        if not -(2**63) <= ns < 2**63:
            raise LineParseError(f"timestamp out of range {ts_text!r}")
    elif i >= n or not line[i:].strip():
        if default_time is None:
            raise LineParseError("missing timestamp")
        ns = round(default_time * 1_000_000) * 1_000
    else:
        raise LineParseError(f"unexpected text at {i}: {line[i:i + 20]!r}")
    return Point(measurement=measurement, tags=tags, fields=fields, time=ns / 1e9), ns


def line_measurement(line: str) -> str:
    """The (unescaped) measurement of a line, cheaply: the label of per-measurement metrics."""
    comma, space = line.find(","), line.find(" ")
    end = space if comma < 0 or 0 <= space < comma else comma
    if end > 0 and "\\" not in line[:end]:
        return line[:end]
    return _read_name(line, 0, ", ")[0]
