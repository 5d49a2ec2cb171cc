"""PROTOCOL §3 heartbeats: bytes → validated fields and per-field rejections. Pure.

A wrong-typed or out-of-range field is rejected alone (and counted by the caller);
a payload that is not a JSON object, or whose `kind` is missing or wrong, is
rejected whole. Unknown fields are ignored (forward compatibility).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, Literal

from pydantic import Field, StrictBool, StrictInt, TypeAdapter, ValidationError

MAX_HEARTBEAT_BYTES: Final = 16 * 1024

Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
NonNeg = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
Percent = Annotated[float, Field(strict=True, ge=0, le=100, allow_inf_nan=False)]


def _is_stream_url(value: str) -> str:
    if not value.lower().startswith(("rtsp://", "rtsps://", "http://", "https://")):
        raise ValueError("must be an rtsp:// or http(s):// URL")
    return value


_COMMON: Final[dict[str, TypeAdapter[Any]]] = {
    "ts": TypeAdapter(Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]),
    "seq": TypeAdapter(Annotated[StrictInt, Field(ge=0)]),
    "interval_s": TypeAdapter(Annotated[float, Field(strict=True, gt=0, le=86_400, allow_inf_nan=False)]),
    "uptime_s": TypeAdapter(Annotated[StrictInt, Field(ge=0)]),
    "rssi_dbm": TypeAdapter(Annotated[StrictInt, Field(ge=-200, le=50)]),
    "fw": TypeAdapter(Annotated[str, Field(strict=True, max_length=32)]),
}
_CAMERA: Final[dict[str, TypeAdapter[Any]]] = {
    "fps": TypeAdapter(NonNeg),
    "bitrate_kbps": TypeAdapter(NonNeg),
    "temp_c": TypeAdapter(Number),
    "storage_free_pct": TypeAdapter(Percent),
    "recording": TypeAdapter(StrictBool),
    "stream_url": TypeAdapter(Annotated[str, Field(strict=True, max_length=512)]),
}
_SPEAKER: Final[dict[str, TypeAdapter[Any]]] = {
    "volume": TypeAdapter(Annotated[StrictInt, Field(ge=0, le=100)]),
    "state": TypeAdapter(Literal["idle", "playing", "fault"]),
    "playing": TypeAdapter(Annotated[str | None, Field(strict=True, max_length=64)]),
    "amp_temp_c": TypeAdapter(Number),
    "power_w": TypeAdapter(NonNeg),
    "mains": TypeAdapter(StrictBool),
    "battery_pct": TypeAdapter(Percent),
}
_LIGHT: Final[dict[str, TypeAdapter[Any]]] = {  # street lights: docs/devices.md
    "on": TypeAdapter(StrictBool),
    "level": TypeAdapter(Annotated[StrictInt, Field(ge=0, le=100)]),
    "power_w": TypeAdapter(NonNeg),
    "energy_wh": TypeAdapter(NonNeg),
    "mains": TypeAdapter(StrictBool),
    "solar": TypeAdapter(StrictBool),
    "battery_pct": TypeAdapter(Percent),
    "solar_w": TypeAdapter(NonNeg),
    "lux": TypeAdapter(NonNeg),
    "temp_c": TypeAdapter(Number),
    "fault": TypeAdapter(Annotated[str | None, Field(strict=True, max_length=32)]),
    "mode": TypeAdapter(Literal["auto", "manual"]),
}
FIELDS_BY_KIND: Final[dict[str, dict[str, TypeAdapter[Any]]]] = {
    "camera": {**_COMMON, **_CAMERA},
    "speaker": {**_COMMON, **_SPEAKER},
    "light": {**_COMMON, **_LIGHT},
}


@dataclass(frozen=True, slots=True)
class FieldRejection:
    field: str
    reason: str  # wrong_type | out_of_range | too_long | bad_value


@dataclass(frozen=True, slots=True)
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


def _reason(err: ValidationError) -> str:
    kind = err.errors()[0]["type"]
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number"):
        return "out_of_range"
    if kind in ("string_too_long",):
        return "too_long"
    if kind in ("literal_error", "value_error"):
        return "bad_value"
    return "wrong_type"


def parse_heartbeat(
    device_id: str, payload: bytes, received_at: float, *, skew_limit_s: float = 300.0
) -> Heartbeat | HeartbeatRejected:
    if len(payload) > MAX_HEARTBEAT_BYTES:
        return HeartbeatRejected(device_id, "too_large", f"{len(payload)} bytes > {MAX_HEARTBEAT_BYTES}")
    try:
        doc = json.loads(payload, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        return HeartbeatRejected(device_id, "not_json", str(exc)[:200])
    if not isinstance(doc, dict):
        return HeartbeatRejected(device_id, "not_object", type(doc).__name__)
    kind = doc.get("kind")
    if kind is None:
        return HeartbeatRejected(device_id, "missing_kind")
    if not isinstance(kind, str) or kind not in FIELDS_BY_KIND:
        return HeartbeatRejected(device_id, "bad_kind", repr(kind)[:64])

    adapters = FIELDS_BY_KIND[kind]
    fields: dict[str, Any] = {}
    rejected: list[FieldRejection] = []
    for name, raw in doc.items():
        adapter = adapters.get(name)
        if adapter is None:
            continue  # `kind` itself and unknown fields
        try:
            value = adapter.validate_python(raw)
            if name == "stream_url":
                value = _is_stream_url(value)
        except ValidationError as exc:
            rejected.append(FieldRejection(name, _reason(exc)))
            continue
        except ValueError:
            rejected.append(FieldRejection(name, "bad_value"))
            continue
        fields[name] = value

    ts = fields.pop("ts", None)
    skew: float | None = None
    point_time = received_at
    if ts is not None:
        delta = ts - received_at
        if math.fabs(delta) > skew_limit_s:
            skew = delta
        else:
            point_time = ts
    return Heartbeat(
        device_id=device_id,
        kind=kind,
        time=point_time,
        received_at=received_at,
        fields=fields,
        seq=fields.get("seq"),
        interval_s=fields.get("interval_s"),
        clock_skew_s=skew,
        rejected=tuple(rejected),
    )


def heartbeat_point_fields(hb: Heartbeat) -> dict[str, Any]:
    """Fields for the `heartbeat` measurement: every validated field; `playing` null → ""."""
    out = dict(hb.fields)
    if "playing" in out and out["playing"] is None:
        out["playing"] = ""
    if "fault" in out and out["fault"] is None:  # a light's healthy lamp
        out["fault"] = ""
    return out


def lost_between(previous_seq: int | None, seq: int | None) -> int:
    """Heartbeats missing between two consecutive seq numbers (0 on restart or reorder)."""
    if previous_seq is None or seq is None or seq <= previous_seq:
        return 0
    return seq - previous_seq - 1
