"""hub.devices.heartbeat against the pydantic TypeAdapters it replaced (issue 12), with hypothesis.

The oracle below is the parser as it was before the rewrite for speed (pydantic strict
TypeAdapters, `json.loads`), plus the `light` kind of issue 14 written the same way. For any
payload — valid, wrong-typed, out of range, unknown fields, not JSON at all — both must
give the same result: the same whole-payload rejection reason, or the same kept fields
(values and types) and the same per-field rejections.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import Field, StrictBool, StrictInt, TypeAdapter, ValidationError

from hub.devices.heartbeat import FIELDS_BY_KIND, Heartbeat, HeartbeatRejected, parse_heartbeat

pytestmark = pytest.mark.unit
NOW = 1_764_400_000.0

# --- the oracle: the pydantic parser as it was -------------------------------------------------
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
NonNeg = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
Percent = Annotated[float, Field(strict=True, ge=0, le=100, allow_inf_nan=False)]
_COMMON: dict[str, TypeAdapter[Any]] = {
    "ts": TypeAdapter(Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]),
    "seq": TypeAdapter(Annotated[StrictInt, Field(ge=0)]),
    "interval_s": TypeAdapter(Annotated[float, Field(strict=True, gt=0, le=86_400, allow_inf_nan=False)]),
    "uptime_s": TypeAdapter(Annotated[StrictInt, Field(ge=0)]),
    "rssi_dbm": TypeAdapter(Annotated[StrictInt, Field(ge=-200, le=50)]),
    "fw": TypeAdapter(Annotated[str, Field(strict=True, max_length=32)]),
}
ORACLE: dict[str, dict[str, TypeAdapter[Any]]] = {
    "camera": {**_COMMON,
               "fps": TypeAdapter(NonNeg), "bitrate_kbps": TypeAdapter(NonNeg), "temp_c": TypeAdapter(Number),
               "storage_free_pct": TypeAdapter(Percent), "recording": TypeAdapter(StrictBool),
               "stream_url": TypeAdapter(Annotated[str, Field(strict=True, max_length=512)])},
    "speaker": {**_COMMON,
                "volume": TypeAdapter(Annotated[StrictInt, Field(ge=0, le=100)]),
                "state": TypeAdapter(Literal["idle", "playing", "fault"]),
                "playing": TypeAdapter(Annotated[str | None, Field(strict=True, max_length=64)]),
                "amp_temp_c": TypeAdapter(Number), "power_w": TypeAdapter(NonNeg),
                "mains": TypeAdapter(StrictBool), "battery_pct": TypeAdapter(Percent)},
    "light": {**_COMMON,
              "on": TypeAdapter(StrictBool), "level": TypeAdapter(Annotated[StrictInt, Field(ge=0, le=100)]),
              "power_w": TypeAdapter(NonNeg), "energy_wh": TypeAdapter(NonNeg), "mains": TypeAdapter(StrictBool),
              "solar": TypeAdapter(StrictBool), "battery_pct": TypeAdapter(Percent),
              "solar_w": TypeAdapter(NonNeg), "lux": TypeAdapter(NonNeg), "temp_c": TypeAdapter(Number),
              "fault": TypeAdapter(Annotated[str | None, Field(strict=True, max_length=32)]),
              "mode": TypeAdapter(Literal["auto", "manual"])},
}


def _reason(err: ValidationError) -> str:
    kind = err.errors()[0]["type"]
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number"):
        return "out_of_range"
    if kind in ("string_too_long",):
        return "too_long"
    if kind in ("literal_error", "value_error"):
        return "bad_value"
    return "wrong_type"


def _no_constant(name: str) -> float:
    raise ValueError(name)


def oracle(payload: bytes) -> tuple[Any, ...]:
    """('rejected', reason) or ('ok', kind, fields with types, sorted field rejections, ts)."""
    if len(payload) > 16 * 1024:
        return ("rejected", "too_large")
    try:
        doc = json.loads(payload, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return ("rejected", "not_json")
    if not isinstance(doc, dict):
        return ("rejected", "not_object")
    kind = doc.get("kind")
    if kind is None:
        return ("rejected", "missing_kind")
    if not isinstance(kind, str) or kind not in ORACLE:
        return ("rejected", "bad_kind")
    fields: dict[str, Any] = {}
    rejected = []
    for name, raw in doc.items():
        adapter = ORACLE[kind].get(name)
        if adapter is None:
            continue
        try:
            value = adapter.validate_python(raw)
            if name == "stream_url" and not value.lower().startswith(("rtsp://", "rtsps://", "http://", "https://")):
                raise ValueError("scheme")
        except ValidationError as exc:
            rejected.append((name, _reason(exc)))
            continue
        except ValueError:
            rejected.append((name, "bad_value"))
            continue
        fields[name] = value
    ts = fields.pop("ts", None)
    return ("ok", kind, typed(fields), sorted(rejected), ts)


def typed(fields: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    return {k: (type(v).__name__, v) for k, v in fields.items()}


def actual(payload: bytes) -> tuple[Any, ...]:
    r = parse_heartbeat("dev-1", payload, NOW, skew_limit_s=math.inf)
    if isinstance(r, HeartbeatRejected):
        return ("rejected", r.reason)
    assert isinstance(r, Heartbeat)
    ts = r.time if "ts" in json.loads(payload, parse_constant=_no_constant) and r.time != NOW else None
    return ("ok", r.kind, typed(r.fields), sorted((x.field, x.reason) for x in r.rejected), ts)


# --- strategies -----------------------------------------------------------------------------
ALL_FIELDS = sorted({name for fields in ORACLE.values() for name in fields})
scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(-(2**70), 2**70), st.integers(-300, 300),
    st.floats(allow_nan=False, allow_infinity=False), st.floats(-1000, 100_000),
    st.text(max_size=40), st.text(max_size=600),
    st.sampled_from(["idle", "playing", "fault", "auto", "manual", "rtsp://cam/1", "HTTP://x", "ftp://x", ""]),
)
values = st.one_of(scalars, st.lists(scalars, max_size=3), st.dictionaries(st.text(max_size=5), scalars, max_size=2))
docs = st.fixed_dictionaries(
    {"kind": st.one_of(st.sampled_from(["camera", "speaker", "light"]), scalars)},
    optional={name: values for name in ALL_FIELDS} | {"extra": values, "Kind": values},
)


def test_oracle_and_parser_know_the_same_fields() -> None:
    assert {k: set(v) for k, v in FIELDS_BY_KIND.items()} == {k: set(v) for k, v in ORACLE.items()}


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs)
def test_parser_matches_the_pydantic_oracle_on_json_objects(doc: dict[str, Any]) -> None:
    payload = json.dumps(doc).encode()
    assert actual(payload) == oracle(payload)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=64), st.text(max_size=64).map(str.encode),
                 st.sampled_from([b'\xef\xbb\xbf{"kind": "camera", "fps": 1}', '{"kind": "speaker"}'.encode("utf-16"),
                                  b'{"kind": "camera", "temp_c": 1e400}', b'{"kind": "camera", "seq": 1e3}',
                                  b'{"kind": "camera", "fw": "\\ud800"}', b'{"kind": "light", "level": 1' + b"0" * 400 + b"}",
                                  b'{"kind": "camera", "temp_c": 1' + b"0" * 400 + b"}",
                                  b'{"kind": "camera", "stream_url": "ftp://x", "fps": 2}',
                                  b'{"kind": "camera", "fps": -0.0, "fps": 3}', b'{"kind": "camera", "temp_c": NaN}'])))
def test_parser_matches_the_pydantic_oracle_on_arbitrary_bytes(payload: bytes) -> None:
    assert actual(payload) == oracle(payload)
