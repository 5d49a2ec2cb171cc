"""The line-protocol serializer, checked against influxdb-client's Point as the oracle."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from influxdb_client import Point as OraclePoint
from influxdb_client.domain.write_precision import WritePrecision

from hub.messages import Point
from hub.tsdb.lineparse import LineParseError, parse_line
from hub.tsdb.lineprotocol import LineProtocolError, encode_point, encode_points, time_ns

pytestmark = pytest.mark.unit

NASTY = " ,=\"\\\n\t\r'#设备村民组😀é"
names = st.text(alphabet=st.sampled_from(NASTY) | st.characters(codec="utf-8"), min_size=1, max_size=12)
field_values = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=st.sampled_from(NASTY) | st.characters(codec="utf-8"), max_size=20),
)
times = st.floats(min_value=0, max_value=4_000_000_000, allow_nan=False)


def oracle(p: Point) -> str:
    o = OraclePoint(p.measurement)
    for k, v in p.tags.items():
        o.tag(k, v)
    for k, v in p.fields.items():
        o.field(k, v)
    o.time(time_ns(p.time), WritePrecision.NS)
    return str(o.to_line_protocol())


@settings(max_examples=400, deadline=None)
@given(
    measurement=names.filter(lambda s: not s.startswith("#")),
    tags=st.dictionaries(names, names | st.just(""), max_size=4),
    fields=st.dictionaries(names, field_values, min_size=1, max_size=5),
    t=times,
)
def test_encoding_matches_influxdb_client_serializer(
    measurement: str, tags: dict[str, str], fields: dict[str, object], t: float
) -> None:
    p = Point(measurement, tags, fields, t)
    expected = oracle(p)
    if not expected.split(" ", 1)[0] or expected == "" or all(
        isinstance(v, float) and not math.isfinite(v) for v in fields.values()
    ):
        with pytest.raises(LineProtocolError):
            encode_point(p)
        return
    assert encode_point(p) == expected


@settings(max_examples=300, deadline=None)
@given(
    measurement=names.filter(lambda s: not s.startswith("#")),
    tags=st.dictionaries(names, names, max_size=4),
    fields=st.dictionaries(names, field_values, min_size=1, max_size=5),
    t=times,
)
def test_parse_reads_back_what_encode_wrote(
    measurement: str, tags: dict[str, str], fields: dict[str, object], t: float
) -> None:
    """Round trip for names without control characters or backslashes.

    (Line protocol escapes those one way only: influxd itself reads `a\\,` differently
    from what was meant. String field values round-trip whatever they hold.)
    """
    lossy = "\n\t\r\\"
    if any(c in s for s in [measurement, *tags, *tags.values(), *fields] for c in lossy):
        return
    kept = {k: v for k, v in fields.items() if not (isinstance(v, float) and not math.isfinite(v))}
    if not kept:
        return
    back = parse_line(encode_point(Point(measurement, tags, fields, t)))
    assert back.measurement == measurement
    assert back.tags == tags
    assert back.fields == kept
    assert all(type(back.fields[k]) is type(v) for k, v in kept.items())
    assert back.time == pytest.approx(t, abs=1e-6)


def test_heartbeat_point_has_expected_line() -> None:
    p = Point(
        "heartbeat",
        {"device": "cam-001", "kind": "camera", "village": "v01", "village_group": ""},
        {"seq": 7, "fps": 25.0, "temp_c": 41.5, "recording": True, "fw": 'v1 "beta"'},
        1764400000.5,
    )
    assert encode_point(p) == (
        'heartbeat,device=cam-001,kind=camera,village=v01 '
        'fps=25,fw="v1 \\"beta\\"",recording=true,seq=7i,temp_c=41.5 1764400000500000000'
    )


def test_nan_and_infinite_fields_are_dropped_but_the_point_kept() -> None:
    line = encode_point(Point("m", {}, {"a": math.nan, "b": math.inf, "c": 1}, 1.0))
    assert line == "m c=1i 1000000000"


def test_point_with_only_unstorable_fields_is_refused() -> None:
    with pytest.raises(LineProtocolError):
        encode_point(Point("m", {"device": "d"}, {"a": math.nan, "b": None}, 1.0))


def test_int_outside_int64_is_dropped() -> None:
    assert encode_point(Point("m", {}, {"big": 2**64, "ok": 1}, 0.0)) == "m ok=1i 0"


def test_newline_in_tag_value_cannot_break_the_line() -> None:
    line = encode_point(Point("m", {"type": "a\nb"}, {"x": 1}, 0.0))
    assert "\n" not in line
    assert line == "m,type=a\\nb x=1i 0"


def test_chinese_names_are_written_as_they_are() -> None:
    line = encode_point(Point("event", {"village": "红星村", "type": "门 被打开"}, {"detail": "{}"}, 1.0))
    assert line == 'event,type=门\\ 被打开,village=红星村 detail="{}" 1000000000'
    assert parse_line(line).tags == {"village": "红星村", "type": "门 被打开"}


def test_measurement_starting_with_hash_is_refused() -> None:
    with pytest.raises(LineProtocolError):
        encode_point(Point("#comment", {}, {"x": 1}, 0.0))


def test_encode_points_skips_and_reports_unwritable_points() -> None:
    seen: list[str] = []
    lines = encode_points(
        [Point("m", {}, {"x": 1}, 0.0), Point("m", {}, {}, 0.0)],
        on_error=lambda p, err: seen.append(str(err)),
    )
    assert lines == ["m x=1i 0"]
    assert len(seen) == 1


def test_time_is_integer_nanoseconds_rounded_to_the_microsecond() -> None:
    assert time_ns(1764400000.123456) == 1764400000123456000
    assert time_ns(0.0) == 0


@pytest.mark.parametrize(
    "line",
    ["", " x=1", "m", "m x", "m x=", 'm x="open', "m,t x=1 0", "m x=1 notatime", "m x=nan 0"],
)
def test_malformed_lines_are_refused_with_a_reason(line: str) -> None:
    with pytest.raises(LineParseError):
        parse_line(line)


def test_parse_understands_influx_boolean_and_unsigned_spellings() -> None:
    p = parse_line("m a=t,b=FALSE,c=5u,d=-1.5e3 10")
    assert p.fields == {"a": True, "b": False, "c": 5, "d": -1500.0}
    assert p.time == 10 / 1e9


_odd = st.text(alphabet=st.sampled_from('mxy,= "\\\nt1i.-5\xa0门'), min_size=0, max_size=4)
_piece = st.one_of(st.text(alphabet=st.sampled_from("mxyt门"), min_size=1, max_size=3), _odd)
_value = st.one_of(
    _piece, st.sampled_from(["1i", "-2i", "1.5", "t", "false", "3u", "1e3"]),
    _odd.map(lambda s: f'"{s}"'),
)
_near_lines = st.builds(
    lambda m, tags, fields, ts: m + "".join(f",{k}={v}" for k, v in tags) + " "
    + ",".join(f"{k}={v}" for k, v in fields) + ts,
    _piece, st.lists(st.tuples(_piece, _piece), max_size=2),
    st.lists(st.tuples(_piece, _value), min_size=1, max_size=3),
    st.sampled_from(["", " 5", " -7", " 1x", "  5", " 12345678901234567890"]),
)


@settings(max_examples=400, deadline=None)
@given(_near_lines)
def test_fast_parser_agrees_with_the_full_parser_whenever_it_answers(line: str) -> None:
    from hub.tsdb.lineparse import _parse_fast, _parse_full

    fast = _parse_fast(line)
    if fast is None:
        return
    assert _parse_full(line, None) == fast


@settings(max_examples=150, deadline=None)
@given(
    tags=st.dictionaries(names, names, max_size=3),
    fields=st.dictionaries(names, field_values, min_size=1, max_size=4),
)
def test_fast_parser_reads_encoder_output_like_the_full_parser(
    tags: dict[str, str], fields: dict[str, object]
) -> None:
    from hub.tsdb.lineparse import _parse_fast, _parse_full

    try:
        line = encode_point(Point("heartbeat", tags, fields, T_FIXED))
    except LineProtocolError:
        return
    fast = _parse_fast(line)
    if fast is not None:
        assert _parse_full(line, None) == fast


T_FIXED = 1_764_400_000.25


# --- compiled encoders: the same output as the generic encoder --------------------------------
@settings(max_examples=300, deadline=None)
@given(
    fields=st.dictionaries(names, field_values, min_size=1, max_size=6),
    later=st.lists(st.dictionaries(names, field_values, min_size=1, max_size=6), max_size=3),
    t=times,
)
def test_compiled_encoder_writes_what_the_generic_encoder_writes(
    fields: dict[str, object], later: list[dict[str, object]], t: float
) -> None:
    from hub.tsdb import lineprotocol as lp

    head = lp.line_head("heartbeat", {"device": "cam-1"})
    # the same names with new values of any type, after the encoder was compiled for the first
    renamed = [dict(zip(fields, (v for v in {**dict.fromkeys(fields, 1.5), **x}.values()), strict=False))
               for x in later]
    for fs in [fields] * (lp._COMPILE_AFTER + 2) + renamed:
        try:
            expected = lp._encode_line_generic(head, fs, t)
        except LineProtocolError:
            with pytest.raises(LineProtocolError):
                lp.encode_line(head, fs, t)
            continue
        assert lp.encode_line(head, fs, t) == expected
    assert tuple(fields) in lp._compiled  # the compiled path was taken


def test_compiled_encoder_keeps_hostile_field_names_as_data() -> None:
    from hub.tsdb import lineprotocol as lp

    fs = {"a'''}{head}\n": 1.0, "{time}": 2, "\"; import os #": "x", "b": True}
    for _ in range(lp._COMPILE_AFTER + 3):
        line = lp.encode_line("m", fs, 1.0)
    assert line == lp._encode_line_generic("m", fs, 1.0)
    assert "a'''}{head}\\n=1," in line and "{time}=2i" in line
    assert not isinstance(lp._compiled[tuple(fs)], lp._Pending)  # generated, and used


def test_compiled_encoder_falls_back_when_a_value_does_not_fit_and_recompiles() -> None:
    from hub.tsdb import lineprotocol as lp

    fs: dict[str, object] = {"fps": 25.0, "seq": 1, "fw": "2.4.1", "on": True, "zz_compiled_case": 0}
    for _ in range(lp._COMPILE_AFTER + 2):
        lp.encode_line("m", fs, 1.0)
    for odd in ({**fs, "fps": math.nan}, {**fs, "seq": 2**64}, {**fs, "fw": 'say "hi"'}, {**fs, "fps": 3}):
        assert lp.encode_line("m", odd, 1.0) == lp._encode_line_generic("m", odd, 1.0)
    ints = {**fs, "fps": 25}  # the device now sends an int: recompiled for it after a while
    for _ in range(4 * lp._RECOMPILE_EVERY):
        assert lp.encode_line("m", ints, 1.0) == lp._encode_line_generic("m", ints, 1.0)
    assert lp._compiled[tuple(fs)]("m", ints, 1.0) == lp._encode_line_generic("m", ints, 1.0)
