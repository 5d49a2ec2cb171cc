"""One contract for every time-series backend: the real influxd (v1 HTTP API) and SQLite.

(The v2 backend cannot run here: no InfluxDB 2.x server can be installed on this machine.)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.clock import SystemClock
from hub.messages import Point
from hub.tsdb.base import (
    Bucket,
    RejectedBatchError,
    SeriesQuery,
    TimeSeriesStore,
    TransientStoreError,
)
from hub.tsdb.influx_v1 import InfluxV1Store
from hub.tsdb.lineprotocol import encode_point, encode_points
from hub.tsdb.sqlite_store import SqliteStore
from tests.servers import InfluxServer

pytestmark = pytest.mark.component

T0 = 1_764_400_020.0  # a multiple of 60 s


@pytest.fixture(params=["influx_v1", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TimeSeriesStore]:
    s: TimeSeriesStore
    if request.param == "influx_v1":
        influx: InfluxServer = request.getfixturevalue("influxdb")
        s = InfluxV1Store(influx.url, db=f"contract_{uuid.uuid4().hex[:12]}", retention="0s")
    else:
        s = SqliteStore(tmp_path / "timeseries.sqlite3", clock=SystemClock())
    s.setup()
    yield s
    s.close()


def hb(device: str, t: float, **fields: object) -> Point:
    return Point("heartbeat", {"device": device, "kind": "camera", "village": "v01"}, fields, t)


def test_store_answers_ping_after_setup(store: TimeSeriesStore) -> None:
    assert store.ping() is True
    store.setup()  # idempotent
    assert store.ping() is True


def test_written_point_reads_back_with_tags_fields_and_time(store: TimeSeriesStore) -> None:
    store.write_lines([encode_point(hb("cam-001", T0 + 0.25, seq=1, temp_c=41.5))])
    [p] = store.read_points("heartbeat")
    assert p.tags == {"device": "cam-001", "kind": "camera", "village": "v01"}
    assert p.fields == {"seq": 1, "temp_c": 41.5}
    assert p.time == pytest.approx(T0 + 0.25, abs=1e-6)


def test_field_types_round_trip(store: TimeSeriesStore) -> None:
    fields = {
        "whole_float": 25.0, "float": -0.125, "int": -42, "big_int": 2**62, "yes": True,
        "no": False, "text": "idle", "empty_text": "",
    }
    store.write_lines([encode_point(hb("cam-001", T0, **fields))])
    [p] = store.read_points("heartbeat")
    assert p.fields == fields
    assert {k: type(v) for k, v in p.fields.items()} == {k: type(v) for k, v in fields.items()}


@pytest.mark.parametrize(
    "text",
    ["with space", "com,ma", "equals=sign", 'double "quote"', "single 'quote'", "红星村 第三组",
     "emoji 😀", "trailing space ", "#hash"],
)
def test_escaping_round_trips_in_tags_and_fields(store: TimeSeriesStore, text: str) -> None:
    p = Point("event", {"device": "spk-1", "type": text}, {"detail": text, text: 1}, T0)
    store.write_lines([encode_point(p)])
    [back] = store.read_points("event", tags={"type": text})
    assert back.tags == {"device": "spk-1", "type": text}
    assert back.fields == {"detail": text, text: 1}


def test_string_field_keeps_backslashes_quotes_and_newlines(store: TimeSeriesStore) -> None:
    detail = '{"path": "C:\\\\cam\\\\", "note": "line1\nline2", "q": "\\""}'
    store.write_lines([encode_point(Point("event", {"device": "d"}, {"detail": detail}, T0))])
    [back] = store.read_points("event")
    assert back.fields["detail"] == detail


def test_series_buckets_are_aligned_to_the_epoch(store: TimeSeriesStore) -> None:
    points = [hb("cam-001", T0 + i * 10, temp_c=float(i)) for i in range(12)]  # 0..110 s
    store.write_lines(encode_points(points))
    q = SeriesQuery("heartbeat", "temp_c", T0 + 5, T0 + 120, every=60.0)
    assert store.series(q) == [Bucket(T0, 3.0), Bucket(T0 + 60, 8.5)]  # first bucket: 10..50
    agg = {a: [b.value for b in store.series(SeriesQuery(
        "heartbeat", "temp_c", T0, T0 + 120, 60.0, aggregate=a))]
        for a in ("min", "max", "last", "count", "sum")}
    assert agg == {
        "min": [0.0, 6.0], "max": [5.0, 11.0], "last": [5.0, 11.0], "count": [6.0, 6.0],
        "sum": [15.0, 51.0],
    }


def test_series_filters_by_tags_and_skips_empty_buckets(store: TimeSeriesStore) -> None:
    store.write_lines(encode_points(
        [hb("cam-001", T0, fps=10.0), hb("cam-002", T0, fps=30.0), hb("cam-001", T0 + 120, fps=20.0)]
    ))
    q = SeriesQuery("heartbeat", "fps", T0, T0 + 180, 60.0, tags=(("device", "cam-001"),))
    assert store.series(q) == [Bucket(T0, 10.0), Bucket(T0 + 120, 20.0)]
    both = SeriesQuery("heartbeat", "fps", T0, T0 + 60, 60.0, tags=(("village", "v01"),))
    assert store.series(both) == [Bucket(T0, 20.0)]


def test_series_of_a_boolean_field_counts_true_as_one(store: TimeSeriesStore) -> None:
    store.write_lines(encode_points(
        [Point("presence", {"device": "d"}, {"online": i % 4 != 0}, T0 + i) for i in range(8)]
    ))
    assert store.series(SeriesQuery("presence", "online", T0, T0 + 60, 60.0)) == [Bucket(T0, 0.75)]


def test_read_points_filters_by_tags_and_range_in_time_order(store: TimeSeriesStore) -> None:
    points = [hb(f"cam-00{i % 3}", T0 + i, seq=i) for i in range(30)]
    store.write_lines(encode_points(points))
    got = store.read_points("heartbeat", start=T0 + 5, end=T0 + 20)
    assert [p.fields["seq"] for p in got] == list(range(5, 20))
    one = store.read_points("heartbeat", tags={"device": "cam-001"}, start=T0, end=T0 + 30)
    assert [p.fields["seq"] for p in one] == list(range(1, 30, 3))
    assert [p.fields["seq"] for p in store.read_points("heartbeat", limit=4)] == [0, 1, 2, 3]
    assert store.read_points("heartbeat", tags={"device": "nobody"}) == []


def test_writing_the_same_point_again_keeps_one_point(store: TimeSeriesStore) -> None:
    line = encode_point(hb("cam-001", T0, seq=7))
    store.write_lines([line])
    store.write_lines([line, line])
    assert len(store.read_points("heartbeat")) == 1


def test_batch_with_an_unparsable_line_is_rejected_with_the_servers_reason(
    store: TimeSeriesStore,
) -> None:
    good = encode_point(hb("cam-001", T0, seq=1))
    with pytest.raises(RejectedBatchError) as info:
        store.write_lines([good, "this is not line protocol"])
    assert "unable to parse" in info.value.reason
    assert info.value.status == 400


def test_field_type_conflict_is_rejected(store: TimeSeriesStore) -> None:
    store.write_lines([encode_point(hb("cam-001", T0, temp_c=40.5))])
    with pytest.raises(RejectedBatchError) as info:
        store.write_lines([encode_point(hb("cam-001", T0 + 1, temp_c="hot"))])
    assert "conflict" in info.value.reason


# -- generated names and values, through each real store ------------------------------------

_safe_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"), exclude_characters="\\"),
    min_size=1, max_size=10,
)
_measurement_counter = iter(range(1_000_000))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    tags=st.dictionaries(_safe_text, _safe_text, max_size=3),
    fields=st.dictionaries(
        _safe_text,
        st.one_of(st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=30),
                  st.floats(allow_nan=False, allow_infinity=False, width=64)),
        min_size=1, max_size=4,
    ),
)
def test_generated_names_and_values_round_trip(
    store: TimeSeriesStore, tags: dict[str, str], fields: dict[str, object]
) -> None:
    measurement = f"gen{next(_measurement_counter)}"
    tags = {k: v for k, v in tags.items() if k not in ("time", "_field")} | {"case": measurement}
    fields = {k: v for k, v in fields.items() if k not in tags and k != "time"}
    if not fields:
        return
    store.write_lines([encode_point(Point(measurement, tags, fields, T0))])
    [back] = store.read_points(measurement, tags={"case": measurement})
    assert back.tags == tags
    assert back.fields == fields


# -- InfluxDB 1.x specifics ---------------------------------------------------------------


def test_influx_v1_recreates_a_dropped_database_on_write(influxdb: InfluxServer) -> None:
    store = InfluxV1Store(influxdb.url, db=f"drop_{uuid.uuid4().hex[:10]}", retention="0s")
    store.setup()
    influxdb.query(f'DROP DATABASE "{store.db}"')
    store.write_lines([encode_point(hb("cam-1", T0, seq=1))])
    assert [p.fields for p in store.read_points("heartbeat")] == [{"seq": 1}]
    store.close()


def test_influx_v1_setup_brings_the_retention_policy_to_the_configured_duration(
    influxdb: InfluxServer,
) -> None:
    db = f"rp_{uuid.uuid4().hex[:10]}"
    InfluxV1Store(influxdb.url, db=db, retention="30d").setup()
    InfluxV1Store(influxdb.url, db=db, retention="60d").setup()
    [series] = influxdb.query("SHOW RETENTION POLICIES", db=db)
    rows = {v[0]: v for v in series["values"]}  # type: ignore[index]
    assert rows["villagehub"][1] == "1440h0m0s" and rows["villagehub"][4] is True


def test_influx_v1_answers_not_ready_when_nothing_listens() -> None:
    from tests.servers import free_port

    store = InfluxV1Store(f"http://127.0.0.1:{free_port()}", timeout=0.5)
    assert store.ping() is False
    with pytest.raises(TransientStoreError):
        store.write_lines([encode_point(hb("cam-1", T0, seq=1))])


def test_series_of_a_text_field_is_empty(store: TimeSeriesStore) -> None:
    store.write_lines([encode_point(hb("cam-001", T0, fw="2.4.1", seq=1))])
    assert store.series(SeriesQuery("heartbeat", "fw", T0, T0 + 60, 60.0)) == []
    assert store.series(SeriesQuery("heartbeat", "missing", T0, T0 + 60, 60.0)) == []


# -- SQLite specifics -----------------------------------------------------------------------


def test_sqlite_store_deletes_points_past_its_retention(tmp_path: Path) -> None:
    from hub.clock import ManualClock
    from hub.tsdb import sqlite_store

    clock = ManualClock(start=T0 + 2 * 86_400)
    store = SqliteStore(tmp_path / "ts.db", retention="1d", clock=clock)
    store.setup()
    store.write_lines(encode_points([hb("cam-1", T0, seq=1), hb("cam-1", T0 + 1.5 * 86_400, seq=2)]))
    clock.advance(sqlite_store.PRUNE_EVERY_S)
    store.write_lines([encode_point(hb("cam-1", clock.now(), seq=3))])
    assert [p.fields["seq"] for p in store.read_points("heartbeat")] == [2, 3]
    store.close()
