"""PROTOCOL §3 heartbeats: bytes → validated fields and per-field rejections. Pure.

A wrong-typed or out-of-range field is rejected alone (and counted by the caller);
a payload that is not a JSON object, or whose `kind` is missing or wrong, is
rejected whole. Unknown fields are ignored (forward compatibility).

This is the ingest hot path, so it is written for speed (issue 12): the JSON is decoded by
msgspec (C; the standard `json` module only when msgspec refuses a payload, so exactly the
same payloads are accepted as before: BOMs, UTF-16, lone surrogates, huge numbers), and each
field is checked by a small plain-Python validator. The validators keep the semantics of the
pydantic strict TypeAdapters they replaced, reason for reason; tests/unit/test_heartbeat_oracle.py
checks that with hypothesis against those very TypeAdapters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, Literal

import msgspec

from hub.jsondepth import depth_error, too_deep

MAX_HEARTBEAT_BYTES: Final = 16 * 1024


class _Bad(Exception):
    """A field failed validation; `args[0]` is the reason label."""


_WRONG_TYPE = _Bad("wrong_type")
_OUT_OF_RANGE = _Bad("out_of_range")
_TOO_LONG = _Bad("too_long")
_BAD_VALUE = _Bad("bad_value")

Validator = Callable[[Any], Any]


def _number(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False) -> Validator:
    """Strict float: int or float (never bool, never a string), finite, in [lo, hi] (or (lo, hi])."""

    def check(v: Any) -> float:
        cls = type(v)
        if cls is float:
            x: float = v
        elif cls is int:
            try:
                x = float(v)
            except OverflowError:  # an int past the float range (pydantic: not a float)
                raise _WRONG_TYPE from None
        else:
            raise _WRONG_TYPE
        if x - x != 0.0:  # NaN or ±inf (only reachable through the json fallback)
            raise _OUT_OF_RANGE
        if lo is not None and (x <= lo if lo_open else x < lo):
            raise _OUT_OF_RANGE
        if hi is not None and x > hi:
            raise _OUT_OF_RANGE
        return x

    return check


def _integer(lo: int | None = None, hi: int | None = None) -> Validator:
    """Strict int (never bool, never a float like 5.0), in [lo, hi]."""

    def check(v: Any) -> int:
        if type(v) is not int:
            raise _WRONG_TYPE
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise _OUT_OF_RANGE
        return v

    return check


def _boolean(v: Any) -> bool:
    if type(v) is not bool:
        raise _WRONG_TYPE
    return v


_SURROGATE = re.compile("[\ud800-\udfff]")


def _string(max_length: int, *, nullable: bool = False) -> Validator:
    def check(v: Any) -> str | None:
        if type(v) is not str:
            if v is None and nullable:
                return None
            raise _WRONG_TYPE
        if not v.isascii() and _SURROGATE.search(v):  # a lone surrogate escape: not a valid string
            raise _WRONG_TYPE
        if len(v) > max_length:
            raise _TOO_LONG
        return v

    return check


def _choice(*allowed: str) -> Validator:
    options = frozenset(allowed)

    def check(v: Any) -> str:
        if type(v) is not str or v not in options:
            raise _BAD_VALUE
        return v

    return check


def _stream_url(v: Any) -> str:
    s: str | None = _string(512)(v)
    assert s is not None
    if not s.lower().startswith(("rtsp://", "rtsps://", "http://", "https://")):
        raise _BAD_VALUE  # must be an rtsp:// or http(s):// URL
    return s


_NUMBER = _number()
_NON_NEG = _number(0)
_PERCENT = _number(0, 100)

_COMMON: Final[dict[str, Validator]] = {
    "ts": _number(0, lo_open=True),
    "seq": _integer(0),
    "interval_s": _number(0, 86_400, lo_open=True),
    "uptime_s": _integer(0),
    "rssi_dbm": _integer(-200, 50),
    "fw": _string(32),
}
_CAMERA: Final[dict[str, Validator]] = {
    "fps": _NON_NEG,
    "bitrate_kbps": _NON_NEG,
    "temp_c": _NUMBER,
    "storage_free_pct": _PERCENT,
    "recording": _boolean,
    "stream_url": _stream_url,
}
_SPEAKER: Final[dict[str, Validator]] = {
    "volume": _integer(0, 100),
    "state": _choice("idle", "playing", "fault"),
    "playing": _string(64, nullable=True),
    "amp_temp_c": _NUMBER,
    "power_w": _NON_NEG,
    "mains": _boolean,
    "battery_pct": _PERCENT,
}
# Street lights (issue 14, docs/devices.md).
_LIGHT: Final[dict[str, Validator]] = {
    "on": _boolean,
    "level": _integer(0, 100),
    "power_w": _NON_NEG,
    "energy_wh": _NON_NEG,
    "mains": _boolean,
    "solar": _boolean,
    "battery_pct": _PERCENT,
    "solar_w": _NON_NEG,
    "lux": _NON_NEG,
    "temp_c": _NUMBER,
    "fault": _string(32, nullable=True),
    "mode": _choice("auto", "manual"),
}
FIELDS_BY_KIND: Final[dict[str, dict[str, Validator]]] = {
    "camera": {**_COMMON, **_CAMERA},
    "speaker": {**_COMMON, **_SPEAKER},
    "light": {**_COMMON, **_LIGHT},
}
# Nullable string fields: stored as "" when null (InfluxDB has no null).
NULLABLE_STRINGS: Final = frozenset({"playing", "fault"})


# --- the fast path: the same rules as msgspec Structs ---------------------------------------------
# A heartbeat with every known field valid (nearly all of them) is decoded and validated by
# msgspec in C in one pass. When msgspec refuses it for any reason (a bad field, no kind, not
# JSON…), the validators above decide, field by field, with the exact reasons.
_U = msgspec.UnsetType
_UNSET: Any = msgspec.UNSET
_NumF = Annotated[float, msgspec.Meta()]
_NonNegF = Annotated[float, msgspec.Meta(ge=0)]
_PctF = Annotated[float, msgspec.Meta(ge=0, le=100)]
_Pct100I = Annotated[int, msgspec.Meta(ge=0, le=100)]


class _CommonS(msgspec.Struct, tag_field="kind"):
    ts: Annotated[float, msgspec.Meta(gt=0)] | _U = _UNSET
    seq: Annotated[int, msgspec.Meta(ge=0)] | _U = _UNSET
    interval_s: Annotated[float, msgspec.Meta(gt=0, le=86_400)] | _U = _UNSET
    uptime_s: Annotated[int, msgspec.Meta(ge=0)] | _U = _UNSET
    rssi_dbm: Annotated[int, msgspec.Meta(ge=-200, le=50)] | _U = _UNSET
    fw: Annotated[str, msgspec.Meta(max_length=32)] | _U = _UNSET


class _CameraS(_CommonS, tag="camera"):
    fps: _NonNegF | _U = _UNSET
    bitrate_kbps: _NonNegF | _U = _UNSET
    temp_c: _NumF | _U = _UNSET
    storage_free_pct: _PctF | _U = _UNSET
    recording: bool | _U = _UNSET
    stream_url: Annotated[str, msgspec.Meta(max_length=512)] | _U = _UNSET


class _SpeakerS(_CommonS, tag="speaker"):
    volume: _Pct100I | _U = _UNSET
    state: Literal["idle", "playing", "fault"] | _U = _UNSET
    playing: Annotated[str, msgspec.Meta(max_length=64)] | _U | None = _UNSET
    amp_temp_c: _NumF | _U = _UNSET
    power_w: _NonNegF | _U = _UNSET
    mains: bool | _U = _UNSET
    battery_pct: _PctF | _U = _UNSET


class _LightS(_CommonS, tag="light"):
    on: bool | _U = _UNSET
    level: _Pct100I | _U = _UNSET
    power_w: _NonNegF | _U = _UNSET
    energy_wh: _NonNegF | _U = _UNSET
    mains: bool | _U = _UNSET
    solar: bool | _U = _UNSET
    battery_pct: _PctF | _U = _UNSET
    solar_w: _NonNegF | _U = _UNSET
    lux: _NonNegF | _U = _UNSET
    temp_c: _NumF | _U = _UNSET
    fault: Annotated[str, msgspec.Meta(max_length=32)] | _U | None = _UNSET
    mode: Literal["auto", "manual"] | _U = _UNSET


_decode_typed = msgspec.json.Decoder(_CameraS | _SpeakerS | _LightS).decode
_to_builtins = msgspec.to_builtins
_URL_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://")


@dataclass(frozen=True, slots=True)
class FieldRejection:
    field: str
    reason: str  # wrong_type | out_of_range | too_long | bad_value


@dataclass(slots=True)  # not frozen: a frozen dataclass costs ~1.5 µs more to build (hot path)
class Heartbeat:
    device_id: str
    kind: str
    time: float  # point time: device ts when trusted, else received_at
    received_at: float
    fields: dict[str, Any]  # validated §3 fields (excluding ts), `playing` None kept
    seq: int | None
    interval_s: float | None
    clock_skew_s: float | None  # set when |ts - received_at| > limit
    rejected: tuple[FieldRejection, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class HeartbeatRejected:
    device_id: str
    reason: str  # too_large | not_json | not_object | missing_kind | bad_kind
    detail: str = ""


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


_decode = msgspec.json.Decoder().decode


def _load(payload: bytes) -> Any:
    """The JSON document; raises ValueError or RecursionError exactly when `json.loads` does."""
    try:
        return _decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        # msgspec refuses a few documents the standard parser takes (a BOM, UTF-16/32, lone
        # surrogate escapes, numbers past the float range): let `json` decide, as before.
        return json.loads(payload, parse_constant=_reject_constant)


def parse_heartbeat(
    device_id: str, payload: bytes, received_at: float, *, skew_limit_s: float = 300.0
) -> Heartbeat | HeartbeatRejected:
    if len(payload) > MAX_HEARTBEAT_BYTES:
        return HeartbeatRejected(device_id, "too_large", f"{len(payload)} bytes > {MAX_HEARTBEAT_BYTES}")
    try:
        # Typed: refuses a wrong type at its first byte and skips unknown fields without building
        # anything, so no depth check is needed here (hub.jsondepth): the slow path has it.
        typed = _decode_typed(payload)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return _parse_slow(device_id, payload, received_at, skew_limit_s)
    fields: dict[str, Any] = _to_builtins(typed)  # UNSET fields left out; the tag is in it
    kind = fields.pop("kind")
    url = fields.get("stream_url")
    if url is not None and not url.lower().startswith(_URL_SCHEMES):
        return _parse_slow(device_id, payload, received_at, skew_limit_s)
    return _heartbeat(device_id, kind, received_at, fields, None, skew_limit_s)


def _parse_slow(
    device_id: str, payload: bytes, received_at: float, skew_limit_s: float
) -> Heartbeat | HeartbeatRejected:
    """Field by field, with the reason of every rejection (and every whole-payload reason)."""
    if too_deep(payload):  # before `_load` recurses into it, building lists (hub.jsondepth)
        return HeartbeatRejected(device_id, "not_json", depth_error())
    try:
        doc = _load(payload)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        return HeartbeatRejected(device_id, "not_json", str(exc)[:200])
    if type(doc) is not dict:
        return HeartbeatRejected(device_id, "not_object", type(doc).__name__)
    kind = doc.get("kind")
    if kind is None:
        return HeartbeatRejected(device_id, "missing_kind")
    validators = FIELDS_BY_KIND.get(kind) if type(kind) is str else None
    if validators is None:
        return HeartbeatRejected(device_id, "bad_kind", repr(kind)[:64])

    fields: dict[str, Any] = {}
    rejected: list[FieldRejection] | None = None
    for name, raw in doc.items():
        check = validators.get(name)
        if check is None:
            continue  # `kind` itself and unknown fields
        try:
            fields[name] = check(raw)
        except _Bad as bad:
            if rejected is None:
                rejected = []
            rejected.append(FieldRejection(name, bad.args[0]))
    return _heartbeat(device_id, kind, received_at, fields, rejected, skew_limit_s)


def _heartbeat(
    device_id: str, kind: str, received_at: float, fields: dict[str, Any],
    rejected: list[FieldRejection] | None, skew_limit_s: float,
) -> Heartbeat:
    ts = fields.pop("ts", None)
    skew: float | None = None
    point_time = received_at
    if ts is not None:
        delta = ts - received_at
        if delta > skew_limit_s or -delta > skew_limit_s:
            skew = delta
        else:
            point_time = ts
    return Heartbeat(device_id, kind, point_time, received_at, fields, fields.get("seq"),
                     fields.get("interval_s"), skew, tuple(rejected) if rejected else ())


def heartbeat_point_fields(hb: Heartbeat) -> dict[str, Any]:
    """Fields for the `heartbeat` measurement: every validated field; a null `playing` or
    `fault` → "" (InfluxDB has no null)."""
    out = hb.fields
    for name in NULLABLE_STRINGS:
        if name in out and out[name] is None:
            out = dict(out)
            out[name] = ""
    return out


def lost_between(previous_seq: int | None, seq: int | None) -> int:
    """Heartbeats missing between two consecutive seq numbers (0 on restart or reorder)."""
    if previous_seq is None or seq is None or seq <= previous_seq:
        return 0
    return seq - previous_seq - 1
