"""The InfluxDB 2.x backend without a 2.x server (none can be installed here).

Unit: the Flux it builds and the records it decodes. Component: the real influxdb-client
against a loopback stub of `/api/v2/write`, for the status → error mapping.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hub.messages import Point
from hub.tsdb.base import Bucket, RejectedBatchError, SeriesQuery, TransientStoreError
from hub.tsdb.influx_v2 import (
    InfluxV2Store,
    flux_string,
    flux_time,
    read_flux,
    records_to_buckets,
    records_to_points,
    retention_seconds,
    series_flux,
)
from tests.servers import free_port

T0 = 1_764_400_020.0


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@pytest.mark.unit
def test_series_flux_filters_aggregates_in_epoch_aligned_windows() -> None:
    q = SeriesQuery("heartbeat", "temp_c", T0, T0 + 3600, 60.0, "max", (("device", "cam-001"),))
    assert series_flux("vh", q) == (
        'from(bucket: "vh")\n'
        "  |> range(start: 2025-11-29T07:07:00.000000Z, stop: 2025-11-29T08:07:00.000000Z)\n"
        '  |> filter(fn: (r) => r._measurement == "heartbeat" and r._field == "temp_c" '
        'and r["device"] == "cam-001")\n'
        "  |> toFloat()\n  |> group()\n"
        '  |> aggregateWindow(every: 60s, fn: max, createEmpty: false, timeSrc: "_start")\n'
        '  |> keep(columns: ["_time", "_value"])'
    )


@pytest.mark.unit
def test_read_flux_without_end_reads_up_to_now_with_a_per_series_limit() -> None:
    flux = read_flux("vh", "event", {"type": "门"}, None, None, 10)
    assert "range(start: 1970-01-01T00:00:00.000000Z)" in flux
    assert 'r["type"] == "门"' in flux
    assert flux.endswith("|> limit(n: 10)")


@pytest.mark.unit
@pytest.mark.parametrize(
    ("raw", "literal"),
    [('say "hi"', '"say \\"hi\\""'), ("a\\b", '"a\\\\b"'), ("${x}", '"\\${x}"'), ("村", '"村"')],
)
def test_flux_strings_are_escaped(raw: str, literal: str) -> None:
    assert flux_string(raw) == literal


@pytest.mark.unit
def test_flux_time_keeps_microseconds() -> None:
    assert flux_time(0.5) == "1970-01-01T00:00:00.500000Z"


@pytest.mark.unit
def test_records_become_points_merged_by_series_and_time() -> None:
    base = {"result": "_result", "table": 0, "_start": at(0), "_stop": at(T0 + 10),
            "_measurement": "heartbeat", "device": "cam-1", "village": ""}
    records = [
        {**base, "_time": at(T0 + 1), "_field": "seq", "_value": 2},
        {**base, "_time": at(T0), "_field": "seq", "_value": 1},
        {**base, "_time": at(T0), "_field": "temp_c", "_value": 40.5},
        {**base, "device": "cam-2", "_time": at(T0), "_field": "recording", "_value": True},
    ]
    points = records_to_points("heartbeat", records, limit=10)
    assert [(p.tags, p.fields, p.time) for p in points] == [
        ({"device": "cam-1"}, {"seq": 1, "temp_c": 40.5}, T0),
        ({"device": "cam-2"}, {"recording": True}, T0),
        ({"device": "cam-1"}, {"seq": 2}, T0 + 1),
    ]
    assert len(records_to_points("heartbeat", records, limit=1)) == 1
    assert all(isinstance(p, Point) for p in points)


@pytest.mark.unit
def test_window_records_become_buckets() -> None:
    records = [{"_time": at(T0 + 60), "_value": 2.0}, {"_time": at(T0), "_value": 1}]
    assert records_to_buckets(records) == [Bucket(T0, 1.0), Bucket(T0 + 60, 2.0)]


@pytest.mark.unit
@pytest.mark.parametrize(("text", "seconds"), [("0s", 0), (None, 0), ("90d", 7_776_000), ("2w", 1_209_600)])
def test_retention_is_converted_to_bucket_seconds(text: str | None, seconds: int) -> None:
    assert retention_seconds(text) == seconds


# -- the real client against a loopback stub of /api/v2/write --------------------------------


@pytest.fixture
def v2_stub() -> Iterator[tuple[str, list[tuple[int, str, str | None]]]]:
    """(url, script of (status, JSON body, Retry-After)); requests beyond the script get 204."""
    script: list[tuple[int, str, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status, body, retry = script.pop(0) if script else (204, "", None)
            data = body.encode()
            self.send_response(status)
            if retry:
                self.send_header("Retry-After", retry)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", script
    server.shutdown()
    server.server_close()


@pytest.mark.component
def test_v2_write_status_maps_to_store_errors(
    v2_stub: tuple[str, list[tuple[int, str, str | None]]],
) -> None:
    url, script = v2_stub
    store = InfluxV2Store(url, token="t", org="o", bucket="b", timeout=2)
    try:
        store.write_lines(["m x=1i 1"])  # 204
        script.append((400, '{"code":"invalid","message":"unable to parse \'bad\'"}', None))
        with pytest.raises(RejectedBatchError) as rejected:
            store.write_lines(["bad"])
        assert rejected.value.reason == "unable to parse 'bad'"
        assert rejected.value.status == 400
        script.append((429, '{"code":"too many requests","message":"slow down"}', "7"))
        with pytest.raises(TransientStoreError) as busy:
            store.write_lines(["m x=1i 1"])
        assert busy.value.retry_after == 7.0
        script.append((503, "", None))
        with pytest.raises(TransientStoreError):
            store.write_lines(["m x=1i 1"])
    finally:
        store.close()


@pytest.mark.component
def test_v2_unreachable_server_is_transient() -> None:
    store = InfluxV2Store(f"http://127.0.0.1:{free_port()}", token="t", org="o", bucket="b", timeout=1)
    try:
        with pytest.raises(TransientStoreError):
            store.write_lines(["m x=1i 1"])
        assert store.ping() is False
    finally:
        store.close()
